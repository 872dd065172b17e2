"""The lr-train Hydra app: config groups, end-to-end runs, sweeps, DDP and bad overrides."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import lr_plugins
from lr_plugins.app.train import config_dir

SCHEDULE_DIR = Path(lr_plugins.__file__).parent / "conf" / "schedule"
OPTIONS = sorted(p.stem for p in SCHEDULE_DIR.glob("*.yaml"))
#: Each option's class, read from its ``_target_`` (the preset folder is the list).
CLASSES = {o: yaml.safe_load((SCHEDULE_DIR / f"{o}.yaml").read_text())["_target_"].removeprefix("lr_plugins.")
           for o in OPTIONS}
COMMON = {"max_lr", "min_lr", "warmup", "warmup_start_lr", "unit"}
FAST = ["trainer.enable_progress_bar=false", "trainer.enable_checkpointing=false"]


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="lr_train", overrides=overrides)


def lr_train(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "lr_plugins.app.train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def scalars(log_dir: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


def run_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("outputs/*/*/.hydra"))


# ---------------------------------------------------------------------- the config groups
def test_every_schedule_option_is_shipped():
    from lr_plugins.schedules import CURVES

    assert set(CLASSES.values()) == set(CURVES)  # every schedule has an option, every option is a schedule


@pytest.mark.parametrize("option", sorted(CLASSES))
def test_schedule_option_composes_and_instantiates(option):
    cfg = _compose([f"schedule={option}", "schedule.max_lr=0.05"])
    callback = instantiate(cfg.schedule)
    assert type(callback) is getattr(lr_plugins, CLASSES[option])
    # Every value of the YAML reaches the object (read independently from the file).
    raw = yaml.safe_load((SCHEDULE_DIR / f"{option}.yaml").read_text())
    assert COMMON <= set(raw), f"{option} lacks shared keys {COMMON - set(raw)}"
    raw["max_lr"] = 0.05
    for key, value in raw.items():
        if key != "_target_":
            got = getattr(callback, key)
            assert got == pytest.approx(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else got == value, key


def test_shared_keys_sweep_across_every_option():
    """What `-m schedule=<all> schedule.max_lr=... schedule.warmup=...` needs: every option takes them."""
    common = ["schedule.max_lr=0.2", "schedule.min_lr=0.001", "schedule.warmup=0.5",
              "schedule.warmup_start_lr=0.0", "schedule.unit=step"]
    for option in OPTIONS:
        callback = instantiate(_compose([f"schedule={option}", *common]).schedule)
        assert (callback.max_lr, callback.min_lr, callback.warmup, callback.unit) == (0.2, 0.001, 0.5, "step")


def test_default_config_is_mnist1d_cnn_sgd_warmup_cosine():
    cfg = _compose([])
    assert cfg.schedule._target_ == "lr_plugins.WarmupCosine"
    assert cfg.data._target_ == "lr_plugins.app.data.MNIST1DDataModule"
    assert cfg.model.net._target_ == "lr_plugins.app.models.CNN1D" and cfg.model.optimizer == "sgd"
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 1
    assert cfg.get("lr_finder") is None and cfg.get("snapshot") is None


def test_trainer_options():
    ddp = _compose(["trainer=ddp"]).trainer
    assert (ddp.accelerator, ddp.devices, ddp.strategy) == ("cpu", 2, "ddp_spawn")
    assert _compose(["trainer=gpu"]).trainer.accelerator == "gpu"
    assert _compose(["trainer=ddp_gpu"]).trainer.strategy == "ddp"


def test_mlp_takes_its_input_size_from_the_data(tmp_path):
    from lr_plugins.app.train import train

    cfg = _compose(["model=mlp", "data=digits", "schedule=constant", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                    "trainer.limit_val_batches=1", "test=false", "~logger", *FAST])
    out = train(cfg, tmp_path)
    assert out["history"]["step"] == [0, 1]


def test_snapshot_group_instantiates_the_callback():
    cfg = _compose(["snapshot=ensemble"])
    assert type(instantiate(cfg.snapshot)).__name__ == "SnapshotEnsemble"


# ---------------------------------------------------------------------- end to end (subprocess)
def test_default_run_reduced_budget(tmp_path):
    proc = lr_train(["trainer.max_epochs=2", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_folders(tmp_path)
    result = json.loads((run / "result.json").read_text())
    assert result["metrics"]["test/acc"] > 0.6  # 2 epochs of MNIST-1D; 20 epochs reach ~0.99
    for key in ("val/acc", "val/loss", "test/acc", "test/loss"):
        assert f"{key} " in proc.stdout
    assert f"Run folder: {run}" in proc.stdout
    assert f"tensorboard --logdir {run / 'tb'}" in proc.stdout
    # TensorBoard: LR of WarmupCosine(warmup=5% of training, peak = model.lr 0.1), momentum, loss, accuracy.
    lr = scalars(run / "tb", "lr-SGD")
    spe = math.ceil(3600 / 64)
    total = 2 * spe
    for step, value in lr.items():
        t = step / total
        expected = 0.1 * t / 0.05 if t < 0.05 else 0.1 * (1 + math.cos(math.pi * (t - 0.05) / 0.95)) / 2
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-7)
    logged = [s for s in range(total) if (s + 1) % 10 == 0]  # trainer.log_every_n_steps=10, as LearningRateMonitor
    assert sorted(lr) == logged
    momentum = scalars(run / "tb", "lr-SGD-momentum")
    assert sorted(momentum) == logged and all(m == pytest.approx(0.9) for m in momentum.values())
    assert scalars(run / "tb", "train/loss_step") and scalars(run / "tb", "val/acc")
    assert scalars(run / "tb", "test/acc")[max(scalars(run / "tb", "test/acc"))] == pytest.approx(result["metrics"]["test/acc"])


def test_schedule_override_sgdr(tmp_path):
    proc = lr_train(["schedule=sgdr", "schedule.unit=epoch", "schedule.cycle_length=1", "schedule.max_lr=0.05", "data=digits",
                     "model=mlp", "trainer.max_epochs=3", "trainer.log_every_n_steps=1", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_folders(tmp_path)
    lr = scalars(run / "tb", "lr-SGD")
    spe = math.ceil(round(1348 * 0.9) / 64)  # digits: 1797 - 449 test, 10% validation
    assert len(lr) == 3 * spe
    for step, value in lr.items():  # Loshchilov & Hutter eq. 5 with T_0 = 1 epoch
        t_cur = (step / spe) % 1.0
        assert value == pytest.approx(0.025 * (1 + math.cos(math.pi * t_cur)), rel=1e-5, abs=1e-7)


def test_multirun_2x2_writes_summary(tmp_path):
    proc = lr_train(["-m", "schedule=sgdr,clr", "schedule.max_lr=0.1,0.05", "data=digits", "model=mlp",
                     "trainer.max_epochs=2", "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert sorted(r["overrides"] for r in rows) == sorted(
        f"schedule={s} schedule.max_lr={m}" for s in ("sgdr", "clr") for m in ("0.1", "0.05")
    )
    assert sorted(r["job"] for r in rows) == ["0", "1", "2", "3"]
    for r in rows:
        assert 0.5 < float(r["test/acc"]) <= 1.0 and float(r["val/loss"]) > 0
        job = json.loads((sweep / r["job"] / "result.json").read_text())
        assert float(r["test/acc"]) == pytest.approx(job["metrics"]["test/acc"])
        peak, steps, lrs = float(r["overrides"].rsplit("=", 1)[1]), job["history"]["step"], job["history"]["lr"]
        total = 2 * math.ceil(1213 / 64)
        if "sgdr" in r["overrides"]:  # the preset: 4 cosine cycles of a quarter of training each
            expected = [peak * (1 + math.cos(math.pi * (k / total % 0.25) / 0.25)) / 2 for k in steps]
        else:  # the preset: triangles between peak / 4 and the peak, half a cycle = 1/8 of training
            x = [k / total / 0.25 % 1.0 for k in steps]
            expected = [peak / 4 + 0.75 * peak * (2 * v if v <= 0.5 else 2 * (1 - v)) for v in x]
        assert lrs == pytest.approx(expected, rel=1e-6)
    assert (sweep / "summary.md").read_text().startswith("| job | overrides |")
    assert (sweep / "summary.png").stat().st_size > 10_000
    assert "schedule=clr schedule.max_lr=0.05" in proc.stdout  # the table is printed


@pytest.mark.slow
def test_ddp_two_processes_one_run_folder(tmp_path):
    proc = lr_train(["trainer=ddp", "data=digits", "model=mlp", "trainer.max_epochs=2", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_folders(tmp_path)  # one run folder, not one per process
    history = json.loads((run / "result.json").read_text())["history"]
    # Two processes split the 1213 training samples: ceil(607 / 64) = 10 steps per epoch (19 with one).
    assert len(history["step"]) == 2 * math.ceil(math.ceil(1213 / 2) / 64)
    assert json.loads((run / "result.json").read_text())["metrics"]["test/acc"] > 0.5


@pytest.mark.slow
def test_default_lr_train_reaches_94_percent(tmp_path):
    proc = lr_train([], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_folders(tmp_path)
    assert json.loads((run / "result.json").read_text())["metrics"]["test/acc"] >= 0.94


# ---------------------------------------------------------------------- bad overrides
@pytest.mark.parametrize(
    "override, expected",
    [
        ("schedule=sgdrr", ["schedule/sgdrr", "sgdr", "warmup_cosine"]),  # unknown option: the allowed ones
        ("schedule.max_lrr=0.1", ["max_lrr"]),  # misspelled key
        ("schedule.max_lr=abc", ["max_lr='abc'", "finite number"]),  # invalid type
        pytest.param("schedule.warmup=-1", ["warmup=-1.0", "[0.0, inf)"], marks=pytest.mark.slow),  # bad value
        ("+schedule.hlod=3", ["hlod", "allowed keys", "hold"]),  # an added key the class does not take
        pytest.param("trainer.max_epoch=3", ["max_epoch"], marks=pytest.mark.slow),
        pytest.param("+trainer.max_epoch=3", ["trainer.max_epoch", "max_epochs"], marks=pytest.mark.slow),
    ],
)
def test_bad_override_fails_before_training(tmp_path, override, expected):
    proc = lr_train([override, *FAST], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]  # unknown options and keys too (composed before Hydra's run)
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("lr-train:")]
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in line, (text, line)
    assert "Epoch 0" not in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("outputs/**/result.json"))
    assert not run_folders(tmp_path), "a run folder was left behind"
    assert not (tmp_path / "outputs").exists(), "empty date folders were left behind"


def test_warmup_longer_than_training_is_refused_before_training(tmp_path):
    proc = lr_train(["schedule.unit=epoch", "schedule.warmup=5", "trainer.max_epochs=2", "data=digits", "model=mlp", *FAST], tmp_path)
    assert proc.returncode == 2
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("lr-train:")]
    assert "warmup=5.0" in line and "longer than training" in line and "nothing was trained" in line
    assert "Epoch 0" not in proc.stdout + proc.stderr
    assert not run_folders(tmp_path) and not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------------- contracts with the finder and snapshots
@pytest.mark.parametrize("rule", ["auto", "steepest", "valley"])
def test_lr_finder_exit_prints_the_pick_and_trains_nothing(tmp_path, capsys, rule):
    pytest.importorskip("lr_plugins.finder")
    from lr_plugins.app.train import train

    cfg = _compose([f"lr_finder={rule}", "lr_finder.stop=true", "data=digits", "model=mlp", *FAST])
    assert cfg.lr_finder.suggestion == rule and "exit" not in cfg.lr_finder
    out = train(cfg, tmp_path)
    printed = capsys.readouterr().out
    assert f"schedule.max_lr={out['suggestion']:.4g}" in printed
    assert 1e-7 < out["suggestion"] < 10.0
    assert not (tmp_path / "history.json").exists()  # no training


def test_lr_finder_scale_override_scales_the_pick(tmp_path, capsys):
    from lr_plugins.app.train import train

    cfg = _compose(["lr_finder=steepest", "lr_finder.scale=2", "lr_finder.stop=true", "data=digits", "model=mlp", *FAST])
    out = train(cfg, tmp_path)
    assert out["suggestion"] == 2 * out["suggestions"]["steepest"]
    assert f"(steepest {out['suggestions']['steepest']:.4g} x 2)" in capsys.readouterr().out


def test_lr_finder_scale_in_a_training_run_trains_with_the_scaled_pick(tmp_path, capsys):
    from lr_plugins.app.train import train

    cfg = _compose(["lr_finder=steepest", "lr_finder.scale=0.5", "schedule=constant", "data=digits", "model=mlp",
                    "trainer.max_epochs=1", "~logger", *FAST])
    out = train(cfg, tmp_path)
    applied = out["metrics"]["lr_finder/suggestion"]  # the LR trained with, for the sweep's summary table
    assert out["history"]["lr"][0] == pytest.approx(applied, rel=1e-12)
    picked = float(capsys.readouterr().out.split("(steepest ")[1].split(" x 0.5")[0])
    assert applied == pytest.approx(0.5 * picked, rel=5e-3)  # the pick printed with 3 significant digits


def test_lr_finder_exit_with_an_hparams_search_is_refused(tmp_path):
    from lr_plugins.app.train import ConfigError, train

    cfg = _compose(["lr_finder=steepest", "lr_finder.stop=true", "+optimized_metric=val/acc", "data=digits", *FAST])
    with pytest.raises(ConfigError, match="lr_finder.stop=true trains nothing.*'val/acc'"):
        train(cfg, tmp_path)
    assert not any(tmp_path.iterdir())


def test_lr_finder_exit_sweep_writes_the_picks_and_a_summary(tmp_path):
    """`-m ... lr_finder.stop=true`: every job writes result.json with its picks, the sweep tabulates them."""
    proc = lr_train(["-m", "lr_finder=steepest", "lr_finder.suggestion=steepest,valley", "lr_finder.stop=true",
                     "data=digits", "model=mlp",
                     "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / "sweep" / job / "result.json").read_text()) for job in ("0", "1")]
    for r, rule in zip(results, ("steepest", "valley")):
        assert f"lr_finder.suggestion={rule}" in r["overrides"]
        assert r["suggestion"] == r["suggestions"][rule] == r["metrics"]["lr_finder/suggestion"]
        assert set(r["suggestions"]) == {"steepest", "valley", "minimum/10"}
        assert "history" not in r  # nothing was trained
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "lr_finder/suggestion" in summary and "lr_finder.suggestion=valley" in summary
    assert f"{results[1]['suggestion']:.4g}" in summary  # LRs with 4 significant digits, not 4 decimals


def test_lr_finder_and_snapshot_callbacks_in_one_run(tmp_path, capsys):
    pytest.importorskip("lr_plugins.finder")
    from lr_plugins.app.train import train

    cfg = _compose(["lr_finder=steepest", "schedule=sgdr", "schedule.unit=epoch", "schedule.cycle_length=1", "snapshot=ensemble",
                    "data=digits", "model=mlp", "trainer.max_epochs=2", "~logger", *FAST])
    out = train(cfg, tmp_path)
    # The finder's pick became SGDR's peak: the first step after the range test uses it.
    pick = float(capsys.readouterr().out.split("Reuse it with: schedule.max_lr=")[1].split()[0])
    assert out["history"]["lr"][0] == pytest.approx(pick, rel=1e-2) and pick != 0.1
    # Every val/* and test/* metric reaches the result, the snapshot ensemble's included.
    assert {"val/ensemble_acc", "test/ensemble_acc", "test/acc", "val/acc"} <= set(out["metrics"])


# ---------------------------------------------------------------------- launchers and sweepers (optional extras)
@pytest.mark.slow
@pytest.mark.parametrize("launcher, plugin", [("parallel", "hydra_joblib_launcher"), ("submitit_local", "hydra_submitit_launcher")])
def test_launchers_run_the_sweep_and_summary(tmp_path, launcher, plugin):
    pytest.importorskip(f"hydra_plugins.{plugin}")
    proc = lr_train(["-m", f"hydra/launcher={launcher}", "schedule=sgdr,clr", "data=digits", "model=mlp",
                     "trainer.max_epochs=2", "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    assert sorted(r["overrides"] for r in rows) == ["schedule=clr", "schedule=sgdr"]


@pytest.mark.slow
def test_optuna_search(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    proc = lr_train(["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "data=digits", "model=mlp",
                     "trainer.max_epochs=4", "hydra.sweep.dir=sweep", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    rows = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    assert len(rows) == 2 and best["best_value"] == pytest.approx(max(float(r["val/acc"]) for r in rows))
