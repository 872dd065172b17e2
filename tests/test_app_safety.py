"""Issue 12, the app: bad input is refused by lr-train and lr-preview alike, before any training
step, with one line, exit 2 and nothing left on disk; a refused run removes only what it created;
a sweep survives a bad job.

``BAD_CLI`` is the reliability table's "CLI bad inputs" row (``docs/reliability.md``): every entry
runs through BOTH commands in-process; a few also run as real ``lr-train`` subprocesses.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import pytest
from test_train import FAST, lr_train  # the subprocess runner of lr-train

from lr_plugins.app import preview
from lr_plugins.app import train as app

DIGITS = ["data=digits", "model=mlp"]

SLOW = pytest.mark.slow  # cases beyond the list: run in CI's second job
# (overrides, what the one line must name: the key and the value). "{file}" is a regular file.
BAD_CLI = [
    (["trainer.max_epochs=-5"], ["trainer.max_epochs=-5", ">= -1"]),
    (["trainer.max_steps=-5"], ["trainer.max_steps=-5", ">= -1"]),
    (["trainer.max_epochs=1.5"], ["trainer.max_epochs=1.5", "an integer"]),
    (["seed=abc"], ["seed='abc'", "an integer in [0, 4294967295]"]),
    (["seed=-1"], ["seed=-1", "an integer in [0, 4294967295]"]),
    pytest.param(["seed=4294967296"], ["seed=4294967296"], marks=SLOW),
    (["trainer.devices=0"], ["trainer.devices=0", "-1 (all)"]),
    (["trainer.devices=abc"], ["trainer.devices='abc'", "'auto'"]),
    pytest.param(["logger.save_dir=/proc/lr_plugins_test"], ["logger.save_dir=", "cannot be written"], marks=SLOW),
    pytest.param(["trainer.devices=[0]"], ["trainer", "devices", "CPUAccelerator"], marks=SLOW),  # Lightning's own check
    pytest.param(["trainer.devices=[]"], ["trainer.devices=[]"], marks=SLOW),
    (["trainer.accelerator=tpu"], ["trainer.accelerator='tpu'", "not available on this machine", "cpu"]),
    pytest.param(["trainer.accelerator=banana"], ["trainer.accelerator='banana'", "cpu"], marks=SLOW),
    (["trainer.accumulate_grad_batches=0"], ["trainer.accumulate_grad_batches=0", ">= 1"]),
    pytest.param(["trainer.num_nodes=0"], ["trainer.num_nodes=0", ">= 1"], marks=SLOW),
    pytest.param(["trainer.limit_train_batches=1.5"], ["trainer.limit_train_batches=1.5", "[0.0, 1.0]"], marks=SLOW),
    pytest.param(["trainer.gradient_clip_val=-1"], ["trainer.gradient_clip_val=-1", ">= 0"], marks=SLOW),
    pytest.param(["trainer.enable_model_summary=maybe"], ["trainer.enable_model_summary='maybe'", "true or false"], marks=SLOW),
    pytest.param(["trainer.strategy=bogus"], ["trainer.strategy='bogus'", "ddp_spawn"], marks=SLOW),
    (["+trainer.max_epoch=3"], ["trainer.max_epoch", "max_epochs"]),
    (["test=maybe"], ["test='maybe'", "true or false"]),
    (["lr_finder=steepest", "lr_finder.stop=maybe"], ["lr_finder.stop='maybe'", "true or false"]),
    (["lr_finder=steepest", "lr_finder.stop=true", "+lr_finder.bogus=1"], ["lr_finder", "bogus", "allowed keys"]),
    (["logger.save_dir={file}/tb"], ["logger.save_dir=", "is a file", "can be created and written"]),
    (["snapshot=ensemble", "schedule=sgdr", "snapshot.dirpath={file}/snaps"], ["snapshot.dirpath=", "is a file"]),
    (["lr_finder=steepest", "lr_finder.output_dir={file}/finder"], ["lr_finder.output_dir=", "is a file"]),
    pytest.param(["+trainer.default_root_dir={file}"], ["trainer.default_root_dir=", "not a folder"], marks=SLOW),
    (["trainer=ddp", "schedule.unit=epoch", "schedule.warmup=100"], ["warmup=100", "longer than training"]),
    pytest.param(["schedule.unit=epoch", "schedule.warmup=30", "trainer.max_epochs=20"], ["warmup=30", "longer than training"], marks=SLOW),
    pytest.param(["schedule.max_lr=abc"], ["max_lr='abc'", "finite number"], marks=SLOW),
    pytest.param(["schedule.warmup=-1"], ["warmup=-1", "[0.0, inf]"], marks=SLOW),
    pytest.param(["+schedule.hlod=3"], ["hlod", "allowed keys", "hold"], marks=SLOW),
    pytest.param(["data.batch_size=0"], ["batch_size=0", ">= 1"], marks=SLOW),
    pytest.param(["model.lr=abc"], ["model", "lr"], marks=SLOW),
]
IDS = [" ".join(case.values[0] if hasattr(case, "values") else case[0]) for case in BAD_CLI]


@pytest.fixture
def a_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("elsewhere") / "a_file.txt"
    path.write_text("not a folder")
    return path


@pytest.fixture
def keep_logging():
    """Hydra's job logging reconfigures the root logger in-process: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _fill(overrides: list[str], a_file: Path) -> list[str]:
    return [o.replace("{file}", str(a_file)) for o in overrides]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def lr_train_in_process(monkeypatch, capsys, cwd: Path, overrides: list[str]) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["lr-train", *overrides])
    with pytest.raises(SystemExit) as exit_info:
        app.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.err + captured.out


def _one_refusal_line(output: str, prog: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(f"{prog}:")]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


@pytest.mark.parametrize("overrides, expected", BAD_CLI, ids=IDS)
def test_both_commands_refuse_the_same_bad_input(tmp_path, monkeypatch, capsys, keep_logging, a_file, overrides, expected):
    overrides = _fill(overrides, a_file)
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("keep")
    before = _tree(tmp_path)

    code, output = lr_train_in_process(monkeypatch, capsys, work, [*overrides, *FAST])
    line = _one_refusal_line(output, "lr-train")
    assert code == 2, output[-3000:]
    assert "nothing was trained" in line
    for text in expected:
        assert text in line, (text, line)
    assert "Epoch 0" not in output
    assert _tree(tmp_path) == before, "lr-train left something on disk"

    assert preview.main([*overrides, "--no-terminal", "--out", str(work / "p.png")]) == 2
    pline = _one_refusal_line(capsys.readouterr().err, "lr-preview")
    for text in expected:
        assert text in pline, (text, pline)
    assert _tree(tmp_path) == before, "lr-preview left something on disk"


@pytest.mark.slow  # ~20 s; the same cases run in-process in test_both_commands_refuse_the_same_bad_input
@pytest.mark.parametrize("overrides, expected", [
    (["trainer=ddp", "schedule.unit=epoch", "schedule.warmup=100"], "warmup=100.0"),  # refused in the parent, before DDP spawns
    (["lr_finder=steepest", "lr_finder.stop=maybe"], "stop='maybe'"),
])
def test_lr_train_command_refuses_with_one_line_and_exit_2(tmp_path, overrides, expected):
    """Real subprocesses: the line is the last thing printed, nothing else (no traceback)."""
    proc = lr_train([*DIGITS, *overrides, *FAST], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("lr-train: invalid config, nothing was trained: ")
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("lr-train:")]
    assert expected in line
    assert "Traceback" not in proc.stderr and "Epoch 0" not in proc.stdout + proc.stderr
    assert not any(tmp_path.iterdir()), "something was left on disk"


def test_good_configs_pass_validation():
    """The checks refuse nothing that trains: every shipped option, DDP, GPU-free presets, a finder that stops the fit."""
    from lr_plugins.app.validate import validate

    good = [["trainer=ddp", "trainer.limit_train_batches=0.5", "trainer.gradient_clip_val=1"],
            ["trainer.max_epochs=-1", "schedule=sgdr", "schedule.unit=epoch", "schedule.cycle_length=2", "snapshot=ensemble", "trainer.devices=auto", "+trainer.default_root_dir=x"],
            ["trainer.max_epochs=null", "trainer.max_steps=50", "lr_finder=steepest", "lr_finder.stop=true", "test=false"],
            ["trainer.deterministic=warn", "trainer.precision=bf16-mixed", "seed=4294967295", "trainer.devices=1"]]
    for overrides in good:
        validate(preview.compose_config([*DIGITS, *overrides]))


def test_validation_error_is_one_line_and_a_config_error():
    from lr_plugins.app.validate import ConfigError, validate

    with pytest.raises(ConfigError) as e:
        validate(preview.compose_config(["+schedule.hlod=3"]))
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------- item 1: remove only what this run created
def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_refused_run_into_a_users_folder_keeps_it(tmp_path):
    """The issue's command: `cd work && lr-train hydra.run.dir=../precious schedule.max_lr=abc`."""
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "a.txt").write_text("x")
    (tmp_path / "work").mkdir()
    proc = lr_train(["hydra.run.dir=../precious", "schedule.max_lr=abc"], tmp_path / "work")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "max_lr='abc'" in proc.stderr
    # The user's file stays; what Hydra added in this invocation (.hydra/, lr_train.log) is gone.
    assert _tree(tmp_path) == ["precious", "precious/a.txt", "work"]


def test_refused_rerun_into_a_crashed_run_keeps_its_checkpoints(tmp_path, monkeypatch, capsys, keep_logging):
    run = tmp_path / "outputs" / "myrun"
    (run / "tb" / "checkpoints").mkdir(parents=True)
    (run / "tb" / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- schedule.max_lr=0.1\n")
    (run / "lr_train.log").write_text("epoch 3 ...\n")
    before = _snapshot(tmp_path)
    code, output = lr_train_in_process(monkeypatch, capsys, tmp_path, ["hydra.run.dir=outputs/myrun", "schedule.warmup=-1"])
    assert code == 2 and "warmup=-1" in output
    after = _snapshot(tmp_path)
    assert before["outputs/myrun/tb/checkpoints/last.ckpt"] == after["outputs/myrun/tb/checkpoints/last.ckpt"]
    assert set(before) <= set(after)  # every file that was there still is (Hydra rewrites its own .hydra/*.yaml)
    assert after["outputs/myrun/lr_train.log"].startswith(b"epoch 3 ...\n")


@pytest.mark.parametrize("run_dir", ["..", "."])
def test_refused_run_into_the_parent_or_cwd_keeps_them(tmp_path, monkeypatch, capsys, keep_logging, run_dir):
    work = tmp_path / "parent" / "work"
    work.mkdir(parents=True)
    (tmp_path / "parent" / "sibling.txt").write_text("x")
    (work / "mine.txt").write_text("y")
    before = _tree(tmp_path)
    code, output = lr_train_in_process(monkeypatch, capsys, work, [f"hydra.run.dir={run_dir}", "seed=abc"])
    assert code == 2 and "seed='abc'" in output
    assert _tree(tmp_path) == before


def test_refused_run_removes_the_folders_it_created_and_no_others(tmp_path, monkeypatch, capsys, keep_logging):
    (tmp_path / "outputs" / "2020-01-01" / "10-00-00").mkdir(parents=True)  # an earlier run
    (tmp_path / "outputs" / "2020-01-01" / "10-00-00" / "result.json").write_text("{}")
    before = _tree(tmp_path)
    code, _ = lr_train_in_process(monkeypatch, capsys, tmp_path, ["trainer.max_epochs=-5"])  # default outputs/<date>/<time>
    assert code == 2
    assert _tree(tmp_path) == before
    code, _ = lr_train_in_process(monkeypatch, capsys, tmp_path, ["hydra.run.dir=new/deep/run", "trainer.max_epochs=-5"])
    assert code == 2 and _tree(tmp_path) == before


def test_remove_created_never_touches_what_existed(tmp_path, monkeypatch):
    from lr_plugins.app.run_guard import record, remove_created

    monkeypatch.chdir(tmp_path)
    assert remove_created(tmp_path / "never_recorded") == []  # no record: remove nothing
    (tmp_path / "unrecorded").mkdir()
    assert remove_created(tmp_path / "unrecorded") == [] and (tmp_path / "unrecorded").is_dir()
    record(tmp_path)  # the cwd itself: only new entries of names the app writes go
    (tmp_path / "new.txt").write_text("x")
    (tmp_path / "lr_train.log").write_text("x")
    assert remove_created(tmp_path) == [tmp_path / "lr_train.log"] and (tmp_path / "new.txt").exists()
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    record(tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "link").symlink_to(outside)
    assert remove_created(tmp_path / "run") == [tmp_path / "run"]
    assert outside.read_text() == "x"  # a symlink inside is removed, not followed


# ---------------------------------------------------------------------- item 4: a sweep survives a bad job
def _rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "summary.csv").open()))


def test_sweep_whose_first_job_is_bad_runs_the_next(tmp_path):
    """The small version (one epoch, constant LR): the bad job first, the good one still runs."""
    proc = lr_train(["-m", *DIGITS, "schedule=constant", "trainer.max_epochs=1", "test=false", "schedule.max_lr=abc,0.05",
                     "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = {r["job"]: r for r in _rows(tmp_path / "sweep")}
    assert (rows["0"]["status"], rows["1"]["status"]) == ("failed", "ok")
    assert "max_lr='abc'" in rows["0"]["error"] and float(rows["1"]["val/acc"]) > 0.5
    assert "1 of 2 jobs failed" in proc.stderr


@pytest.mark.slow  # ~40 s: two 2-epoch trainings
def test_sweep_with_a_bad_job_runs_the_others_and_writes_the_summary(tmp_path):
    """The issue's command: `lr-train -m data=digits model=mlp trainer.max_epochs=2 'schedule.max_lr=0.1,abc,0.05'`."""
    proc = lr_train(["-m", *DIGITS, "trainer.max_epochs=2", "schedule.max_lr=0.1,abc,0.05", "hydra.sweep.dir=sweep", *FAST],
                    tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 3 jobs failed" in proc.stderr
    rows = {r["job"]: r for r in _rows(tmp_path / "sweep")}
    assert [rows[j]["status"] for j in "012"] == ["ok", "failed", "ok"]
    assert "max_lr='abc'" in rows["1"]["error"] and rows["1"]["overrides"] == "schedule.max_lr=abc"
    for job in "02":
        result = json.loads((tmp_path / "sweep" / job / "result.json").read_text())
        assert result["status"] == "ok" and float(rows[job]["test/acc"]) == pytest.approx(result["metrics"]["test/acc"])
        assert result["metrics"]["test/acc"] > 0.5
    assert "failed" in (tmp_path / "sweep" / "summary.md").read_text()


@pytest.mark.slow
def test_sweep_job_failing_mid_fit_keeps_the_summary_of_the_others(tmp_path):
    """max_lr=1e30 trains a step, then detect_anomaly raises in backward (NaN): a runtime failure, not a config error."""
    proc = lr_train(["-m", *DIGITS, "trainer.max_epochs=1", "+trainer.detect_anomaly=true", "schedule=constant",
                     "schedule.max_lr=0.05,1e30", "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = {r["job"]: r for r in _rows(tmp_path / "sweep")}
    assert rows["0"]["status"] == "ok" and float(rows["0"]["test/acc"]) > 0.5
    assert rows["1"]["status"] == "failed" and "RuntimeError" in rows["1"]["error"]
    assert "Traceback" in (tmp_path / "sweep" / "1" / "lr_train.log").read_text()  # the details stay in the job's log


@pytest.mark.slow
def test_joblib_sweep_with_a_bad_job_keeps_the_good_ones(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    proc = lr_train(["-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *DIGITS, "trainer.max_epochs=2",
                     "schedule.max_lr=0.1,abc,0.05", "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = {r["job"]: r for r in _rows(tmp_path / "sweep")}
    assert [rows[j]["status"] for j in "012"] == ["ok", "failed", "ok"]
    assert all(float(rows[j]["test/acc"]) > 0.5 for j in "02")


# ---------------------------------------------------------------------- the reliability table stays true
@pytest.mark.slow  # ~20 s: a pytest collection in a subprocess
def test_reliability_table_counts_match_the_tests():
    """docs/reliability.md states as many cases per row as the tests hold (counted by pytest)."""
    import reliability_table as rt

    assert rt.documented() == {row.category: n for row, n in zip(rt.ROWS, rt.collect(rt.ROWS))}
    lifecycle = rt.documented(mark=rt.LIFECYCLE_MARK)
    assert lifecycle == {row.category: n for row, n in zip(rt.LIFECYCLE, rt.collect(rt.LIFECYCLE))}
