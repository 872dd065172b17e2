"""lr-preview: the planned LR curve of an lr-train config, without training."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from lr_plugins.app.preview import compose_config, main, plan, text_plot


def test_plan_sgdr_50_epochs_matches_the_formula():
    p = plan(compose_config(["schedule=sgdr", "schedule.unit=epoch", "schedule.cycle_length=5", "trainer.max_epochs=50"]))
    spe = math.ceil(3600 / 64)  # MNIST-1D: 4000 train - 10% validation, batch 64
    assert (p["steps_per_epoch"], p["total_steps"]) == (spe, 50 * spe)
    t_cur = (np.arange(50 * spe) / spe) % 5.0  # cycle_length 5 epochs, peak = model.lr 0.1
    np.testing.assert_allclose(p["lr"], 0.05 * (1 + np.cos(np.pi * t_cur / 5.0)), rtol=1e-9, atol=1e-12)
    assert p["momentum"] is None


def test_plan_follows_data_ddp_and_accumulation():
    p = plan(compose_config(["data=digits", "data.batch_size=32", "trainer=ddp", "trainer.accumulate_grad_batches=2",
                             "trainer.max_epochs=3", "schedule=clr"]))
    spe = math.ceil(math.ceil(math.ceil(1213 / 2) / 32) / 2)  # per process, then per optimizer step
    assert p["steps_per_epoch"] == spe and p["total_steps"] == 3 * spe
    assert p["momentum"] is not None and p["momentum"].max() == pytest.approx(0.95)


def test_lr_preview_command_writes_png_and_terminal_plot(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "lr_plugins.app.preview", "schedule=sgdr", "trainer.max_epochs=50", "--out", "sgdr.png"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "sgdr.png").stat().st_size > 5_000
    assert "steps/epoch 57, total steps 2850" in proc.stdout
    assert "SGDR: 2850 steps" in proc.stdout  # the terminal plot's title
    assert not (tmp_path / "outputs").exists()  # no run folder for a preview


def test_text_plot_without_plotext(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "plotext", None)  # import plotext -> ImportError
    assert main(["schedule=step", "trainer.max_epochs=20", "--out", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "StepDecay" in out and "*" in out and "step 0" in out
    lines = [line for line in out.splitlines() if line.endswith("|") is False and "|" in line]
    assert lines[0].strip().startswith("0.1")  # top label is the peak (model.lr)


def test_text_plot_shape():
    rows = text_plot(np.array([0.0, 1.0, 0.0]), width=3, height=3).splitlines()
    assert rows[0].endswith(" * ") and rows[2].endswith("* *")


def test_bad_override_exit_code(capsys):
    assert main(["schedule=nope"]) == 2
    assert "Available options in 'schedule'" in capsys.readouterr().err
    assert main(["schedule.max_lr=abc"]) == 2
    assert "max_lr='abc'" in capsys.readouterr().err
