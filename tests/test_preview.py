"""lr-preview: the planned LR curve of an lr-train config, without training."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lr_plugins.app.build import build_node, build_run, plan_fit
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


DIGITS = ["data=digits", "model=mlp", "model.net.hidden=16"]  # 1213 training images: 19 batches of 64


@pytest.mark.parametrize(("overrides", "spe", "total"), [
    (["+trainer.limit_train_batches=10"], 10, 200),            # issue 13.8: planned 19 x 20 = 380 before
    (["+trainer.limit_train_batches=10", "trainer.accumulate_grad_batches=3"], 4, 80),
    (["trainer.max_steps=7"], 19, 7),
    (["trainer.max_epochs=null", "trainer.max_steps=7"], 19, 7),  # crashed in Lightning's estimate before
    (["trainer.max_epochs=null"], 19, 19 * 1000),                # Lightning's default: 1000 epochs
    (["+trainer.fast_dev_run=true"], 1, 1),
    (["+trainer.limit_train_batches=0.5"], 9, 180),             # a fraction of the batches: int(19 * 0.5)
])
def test_plan_reads_the_trainer_like_the_callback(overrides, spe, total):
    """The steps come from the Trainer (limit_train_batches, max_steps, fast_dev_run, accumulation),
    checked against lr_plugins.callback.steps_per_epoch/total_steps on the same real Trainer."""
    import lightning.pytorch as L

    from lr_plugins.callback import steps_per_epoch, total_steps

    cfg = compose_config([*DIGITS, "schedule=constant", *overrides])
    p = plan(cfg)
    assert (p["steps_per_epoch"], p["total_steps"]) == (spe, total)
    assert plan_fit(build_run(cfg)) == (spe, total)  # what validation checks training lengths against

    class Probe(L.Callback):  # what the schedule callback sees at fit start of a real fit
        def on_fit_start(self, trainer, pl_module):
            self.seen = (steps_per_epoch(trainer), total_steps(trainer))
            raise KeyboardInterrupt  # stop before the first step (Lightning ends the fit gracefully)

    probe = Probe()
    kwargs = {**cfg.trainer, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = L.Trainer(**kwargs, callbacks=[probe])
    model_cfg = cfg.model.copy()
    model_cfg.net.in_features = 64
    try:
        trainer.fit(build_node(model_cfg, "model"), datamodule=build_node(cfg.data, "data"))
    except (KeyboardInterrupt, SystemExit):
        pass
    assert probe.seen == (spe, total)


PRESETS = sorted(p.stem for p in (Path(__import__("lr_plugins").__file__).parent / "conf" / "schedule").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_preview_equals_the_lr_of_a_real_fit(tmp_path, preset):
    """Issue 13.8: for every preset, lr-preview's curve is the LR the optimizer had at every step of
    a real short lr-train fit (limited batches and gradient accumulation included)."""
    from lr_plugins.app.train import train

    cfg = compose_config([*DIGITS, f"schedule={preset}", "trainer.max_epochs=3", "+trainer.limit_train_batches=5",
                          "trainer.accumulate_grad_batches=2", "trainer.limit_val_batches=1", "~logger", "test=false",
                          "trainer.enable_progress_bar=false", "trainer.enable_checkpointing=false"])
    p = plan(cfg)
    assert (p["steps_per_epoch"], p["total_steps"]) == (3, 9)  # ceil(5 / 2) per epoch
    trained = train(cfg, tmp_path)["history"]
    assert trained["step"] == list(range(9))
    np.testing.assert_allclose(p["lr"], trained["lr"], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("preset", ["sgdr", "warmup_cosine", "onecycle"])
def test_preview_follows_a_gradient_accumulation_scheduler_as_the_fit_does(tmp_path, preset):
    """Accumulation 1 -> 4 at epoch 2 (8 batches): 8 + 8 + 2 + 2 = 20 steps, the curve re-planned at epoch 2
    as the schedule callback re-plans it; lr-preview's curve is the LR of every step of the real lr-train fit."""
    from lr_plugins.app.train import train

    cfg = compose_config([*DIGITS, f"schedule={preset}", "trainer.max_epochs=4", "+trainer.limit_train_batches=8",
                          "+callbacks.gas._target_=lightning.pytorch.callbacks.GradientAccumulationScheduler",
                          "+callbacks.gas.scheduling={0:1,2:4}", "trainer.limit_val_batches=1", "~logger",
                          "test=false", "trainer.enable_progress_bar=false", "trainer.enable_checkpointing=false"])
    p = plan(cfg)
    assert (p["steps_per_epoch"], p["total_steps"]) == (8, 20)
    trained = train(cfg, tmp_path)["history"]
    assert trained["step"] == list(range(20))
    np.testing.assert_allclose(p["lr"], trained["lr"], rtol=1e-9, atol=1e-15)


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


def test_no_schedule_is_one_line_and_exit_2(tmp_path, capsys):
    """`lr-preview ~schedule` said "Key 'schedule' is not in struct": now the line names the key and the way on."""
    assert main([*DIGITS, "~schedule", "--no-terminal", "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lr-preview: schedule=null is not allowed") and err.count("\n") == 1
    assert not (tmp_path / "p.png").exists()
