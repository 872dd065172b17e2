"""Issue 17 item 9: a run folder belongs to one live run; a refused run removes only its own files; a
sweep job never writes into another job's folder."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time

import pytest
import yaml
from lifecycle_run import DIGITS, env, lr_train, result

from lr_plugins.app.run_guard import record, remove_created
from lr_plugins.app.run_lock import LOCK_NAME, acquire, release


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow  # ~25 s: two lr-train processes, one waiting for the other
def test_second_run_into_a_live_runs_folder_is_refused_naming_the_holder_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    flag = tmp_path / "a"
    first = subprocess.Popen(
        [sys.executable, "-m", "lr_plugins.app.train", *DIGITS, "trainer.max_epochs=1", "hydra.run.dir=run",
         "+callbacks.pause._target_=lifecycle_helpers.PauseAtTrainStart", f"+callbacks.pause.flag={flag}"],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "a.started").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-2000:]
            time.sleep(0.1)
        before = _tree(run)
        second = lr_train([*DIGITS, "trainer.max_epochs=1", "hydra.run.dir=run"], tmp_path)
        assert second.returncode == 2, second.stderr[-2000:]
        (line,) = [ln for ln in second.stderr.splitlines() if ln.startswith("lr-train:")]
        assert f"run folder {run} is in use" in line and f"pid {first.pid}" in line and "started" in line
        assert _tree(run) == before  # nothing written, nothing deleted
    finally:
        (tmp_path / "a.go").write_text("")
        _, err = first.communicate(timeout=240)
    assert first.returncode == 0, err[-2000:]
    assert result(run)["status"] == "ok" and not (run / LOCK_NAME).exists()  # the lock goes with its run


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text('{"pid": 999999, "host": "gone", "started": 0}')  # no process holds its flock
    proc = lr_train([*DIGITS, "trainer.max_epochs=1", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert result(run)["status"] == "ok" and not (run / LOCK_NAME).exists()


def test_lock_is_exclusive_between_processes(tmp_path):
    acquire(tmp_path / "run")
    try:
        code = "import sys; from lr_plugins.app.run_lock import acquire, FolderBusy\n" \
               "try:\n    acquire(sys.argv[1])\nexcept FolderBusy as e:\n    print(e); sys.exit(3)"
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], env=env(), capture_output=True, text=True)
        assert proc.returncode == 3 and f"pid {os.getpid()}" in proc.stdout
    finally:
        release(tmp_path / "run")
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_refused_run_removes_only_its_own_files_from_a_folder_it_created(tmp_path, monkeypatch):
    """A folder this run created, where another process wrote a file meanwhile: that file and the folder stay."""
    monkeypatch.chdir(tmp_path)
    record(tmp_path / "new")
    (tmp_path / "new" / ".hydra").mkdir(parents=True)
    (tmp_path / "new" / "lr_train.log").write_text("ours")
    (tmp_path / "new" / "theirs.ckpt").write_text("another process's")
    removed = remove_created(tmp_path / "new")
    assert sorted(p.name for p in removed) == [".hydra", "lr_train.log"]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["theirs.ckpt"]


def test_sweep_jobs_sharing_a_subdir_never_write_into_each_others_folder(tmp_path):
    proc = lr_train(["-m", *DIGITS, "trainer.max_epochs=1", "schedule=constant", "schedule.max_lr=0.05,0.1",
                     "hydra.sweep.dir=sweep", "hydra.sweep.subdir=x"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    x = tmp_path / "sweep" / "x"
    assert result(x)["overrides"][-1] == "schedule.max_lr=0.05" and result(x)["status"] == "ok"
    assert yaml.safe_load((x / ".hydra" / "overrides.yaml").read_text())[-1] == "schedule.max_lr=0.05"
    rows = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    (refused,) = [r for r in rows if r["status"] == "failed"]
    assert "schedule.max_lr=0.1" in refused["overrides"] and f"job folder {x}" in refused["error"]
    assert "job 0 of the sweep" in refused["error"]
