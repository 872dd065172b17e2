"""lr-train's cooldown branches (issue 18.6): one `wsd` run's stable-phase checkpoint, then
`lr-train -m ckpt_path=<ckpt> trainer.max_epochs=<a,b>`: one job per length, each continuing that run and
decaying at its own end, in the sweep summary."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lr_plugins.app.train import config_dir

SPE = 19  # digits: ceil(1213 training samples / 64)
COMMON = ["schedule=wsd", "schedule.unit=epoch", "schedule.warmup=1", "data=digits", "model=mlp", "trainer.enable_progress_bar=false", "~logger"]


def lr_train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")  # warnings stay on: a resume warning must show
    return subprocess.run([sys.executable, "-m", "lr_plugins.app.train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def wsd_lrs(steps: list[int], epochs: int) -> list[float]:
    """The `wsd` preset's LR at ``steps`` for a fresh run of ``epochs`` epochs (peak: the model's lr)."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="lr_train", overrides=COMMON)
    schedule = instantiate(cfg.schedule)
    scale = 1.0 if schedule.max_lr is not None else cfg.model.lr
    return [scale * schedule.lr_at(k, total_steps=epochs * SPE, steps_per_epoch=SPE) for k in steps]


@pytest.mark.slow
def test_cooldown_branches_from_one_wsd_checkpoint(tmp_path):
    stem = lr_train([*COMMON, "trainer.max_epochs=10", "callbacks.model_checkpoint.save_top_k=-1",
                     "hydra.run.dir=stem"], tmp_path)
    assert stem.returncode == 0, stem.stderr[-3000:]
    ckpt = tmp_path / "stem" / "checkpoints" / f"epoch3-step{4 * SPE}.ckpt"  # after 4 of 10 epochs: stable phase
    assert ckpt.is_file(), sorted(p.name for p in ckpt.parent.iterdir())
    stem_history = json.loads((tmp_path / "stem" / "history.json").read_text())

    sweep = lr_train(["-m", f"ckpt_path={ckpt.relative_to(tmp_path)}", "trainer.max_epochs=5,8", *COMMON,
                      "hydra.sweep.dir=sweep"], tmp_path)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "changed LR schedule" not in sweep.stdout + sweep.stderr  # seamless: no warning, no refusal
    rows = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    assert [(r["overrides"], r["status"]) for r in rows] == [("trainer.max_epochs=5", "ok"), ("trainer.max_epochs=8", "ok")]
    for row, epochs in zip(rows, (5, 8)):
        job = tmp_path / "sweep" / row["job"]
        history = json.loads((job / "history.json").read_text())
        # The job continues the stem at its checkpoint's step and runs to the end of its own length ...
        assert history["step"] == list(range(4 * SPE, epochs * SPE))
        # ... with the LR of a fresh wsd run of that length: the peak, then its own cooldown over its last 20%.
        assert history["lr"] == pytest.approx(wsd_lrs(history["step"], epochs), rel=1e-12, abs=1e-15)
        decay_start = 0.8 * epochs * SPE
        assert all(lr == pytest.approx(0.1) for k, lr in zip(history["step"], history["lr"]) if k <= decay_start)
        assert history["lr"][-1] < 0.1 * 0.5
        # The stem's steps before the checkpoint are that same fresh run's: one run, branched.
        shared = [k for k in stem_history["step"] if k < 4 * SPE]
        assert stem_history["lr"][: len(shared)] == pytest.approx(wsd_lrs(shared, epochs), rel=1e-12, abs=1e-15)
        result = json.loads((job / "result.json").read_text())
        assert result["status"] == "ok" and float(row["test/acc"]) == pytest.approx(result["metrics"]["test/acc"])
        assert result["metrics"]["test/acc"] > 0.8

    # A checkpoint from the stem's own cooldown (after 9 of 10 epochs) cannot branch to a longer length: the
    # LR already run depends on the stem's length. Refused before any step: one line, exit 2, nothing left.
    late = f"stem/checkpoints/epoch8-step{9 * SPE}.ckpt"
    refused = lr_train([*COMMON, "trainer.max_epochs=12", f"ckpt_path={late}", "hydra.run.dir=refused"], tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("lr-train:")]
    assert "nothing was trained" in line and f"resume at optimizer step {9 * SPE}" in line
    assert "trainer.max_epochs=10" in line and "on_length_change=continue" in line
    assert "Traceback" not in refused.stderr and not (tmp_path / "refused").exists()
