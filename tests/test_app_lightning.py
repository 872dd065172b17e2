"""lr-train behaves like a Lightning app (issue 13.9): short runs, a `callbacks` dict group,
resume with `ckpt_path=`, a user's own module, Lightning's log lines once, no progress bar spam.

Every test runs the real `lr-train` (python -m lr_plugins.app.train) in a subprocess, without a
TTY, on the bundled digits data (1213 training images, batch 64: 19 steps per epoch) and the MLP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SMALL = ["data=digits", "model=mlp", "model.net.hidden=32"]
SPE = 19  # ceil(1213 / 64)


def lr_train(args: list[str], cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "lr_plugins.app.train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def test_one_epoch_with_the_default_schedule(tmp_path):
    proc = lr_train([*SMALL, "trainer.max_epochs=1", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = result(tmp_path / "run")["history"]["step"]
    assert steps == list(range(SPE))


@pytest.mark.parametrize("schedule", [[], ["schedule=constant"]], ids=["default", "constant"])
def test_fast_dev_run(tmp_path, schedule):
    proc = lr_train([*SMALL, *schedule, "+trainer.fast_dev_run=true", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result(tmp_path / "run")["history"]["step"] == [0]  # one batch, one optimizer step


def test_callbacks_dict_group_log_lines_and_progress(tmp_path):
    """`+callbacks.<name>._target_=...` adds a Lightning callback (here LearningRateMonitor, the
    only writer of lr-SGD with ~schedule); Lightning's INFO lines print once; no TTY: one
    line per epoch instead of a progress bar; the default checkpoint callback writes last.ckpt."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = lr_train([*SMALL, "trainer.max_epochs=2", "~schedule", "hydra.run.dir=run",
                     "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    lrs = [e.value for e in acc.Scalars("lr-SGD")]
    assert lrs and all(v == pytest.approx(0.1) for v in lrs)  # model.lr, no schedule
    both = proc.stdout + proc.stderr
    assert both.count("GPU available") == 1, both[-3000:]
    assert (run / "lr_train.log").read_text().count("GPU available") == 1
    lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert f"step {2 * SPE}" in lines[1] and "val/acc" in lines[1]
    assert "\r" not in both and len(proc.stdout) < 5_000
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_resolve_ckpt_path_file_folder_last(tmp_path, monkeypatch):
    import time

    from lr_plugins.app.train import ConfigError, resolve_ckpt_path

    monkeypatch.chdir(tmp_path)
    old, new, own = (tmp_path / "outputs" / d / "checkpoints" / "last.ckpt" for d in ("a", "b", "c"))
    for i, path in enumerate((old, new, own)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (time.time() + i, time.time() + i))
    assert resolve_ckpt_path(None, tmp_path / "outputs/c") is None
    assert resolve_ckpt_path(str(old), tmp_path / "outputs/c") == str(old)
    assert resolve_ckpt_path("outputs/a", tmp_path / "outputs/c") == str(Path("outputs/a/checkpoints/last.ckpt"))
    # `last`: the newest under outputs/ that is not in this run's own folder (c is newer, but it is ours)
    assert resolve_ckpt_path("last", tmp_path / "outputs/c") == str(Path("outputs/b/checkpoints/last.ckpt"))
    with pytest.raises(ConfigError, match=r"ckpt_path='missing.ckpt' is not allowed: no such file or folder"):
        resolve_ckpt_path("missing.ckpt", tmp_path / "outputs/c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"ckpt_path='empty' is not allowed: no last.ckpt under empty"):
        resolve_ckpt_path("empty", tmp_path / "outputs/c")


@pytest.mark.slow  # four short runs: ~2 min on 2 busy cores
def test_ckpt_path_file_folder_and_last_resume(tmp_path):
    """`ckpt_path=<file>` resumes that checkpoint; `ckpt_path=last` continues the newest run under
    outputs/; `ckpt_path=<folder>` the newest last.ckpt under the folder; a bad one exits 2."""
    base = [*SMALL, "schedule=constant"]
    first = lr_train([*base, "trainer.max_epochs=2", "hydra.run.dir=outputs/a"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = tmp_path / "outputs/a/checkpoints/last.ckpt"
    second = lr_train([*base, "trainer.max_epochs=3", f"ckpt_path={ckpt}", "hydra.run.dir=outputs/b"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert result(tmp_path / "outputs/b")["history"]["step"] == list(range(2 * SPE, 3 * SPE))
    third = lr_train([*base, "trainer.max_epochs=4", "ckpt_path=last", "hydra.run.dir=outputs/c"], tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert result(tmp_path / "outputs/c")["history"]["step"] == list(range(3 * SPE, 4 * SPE))  # from b, the newest
    fourth = lr_train([*base, "trainer.max_epochs=3", "ckpt_path=outputs/a", "hydra.run.dir=outputs/d"], tmp_path)
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert result(tmp_path / "outputs/d")["history"]["step"] == list(range(2 * SPE, 3 * SPE))
    bad = lr_train([*base, "ckpt_path=nowhere.ckpt", "hydra.run.dir=outputs/e"], tmp_path)
    assert bad.returncode == 2
    assert "ckpt_path='nowhere.ckpt' is not allowed" in bad.stderr
    assert not (tmp_path / "outputs/e").exists()


MODULE = textwrap.dedent(
    """
    import lightning.pytorch as L
    import torch


    class Plain(L.LightningModule):
        '''A user's own module: no val/acc, no test_step.'''

        def __init__(self, lr: float = 0.05):
            super().__init__()
            self.lr = lr
            self.net = torch.nn.Linear(64, 10)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val/loss", torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)
    """
)


def test_own_module_without_val_acc_or_test_step_and_a_callback_yaml(tmp_path):
    """A user's module and a new callback yaml from the user's own config folder (--config-dir):
    training runs, the summary shows the metrics it has, EarlyStopping from `callbacks/` stops it."""
    (tmp_path / "my_module.py").write_text(MODULE)
    conf = tmp_path / "my_conf"
    (conf / "model").mkdir(parents=True)
    (conf / "callbacks").mkdir()
    (conf / "model" / "plain.yaml").write_text("_target_: my_module.Plain\nlr: 0.05\n")
    (conf / "callbacks" / "early_stop.yaml").write_text(
        "early_stop:\n  _target_: lightning.pytorch.callbacks.EarlyStopping\n"
        "  monitor: val/loss\n  mode: min\n  stopping_threshold: 100.0\n"  # met at the first validation
    )
    proc = lr_train(["--config-dir", str(conf), "model=plain", "data=digits", "schedule=constant",
                     "trainer.max_epochs=3", "callbacks=[default,early_stop]", "hydra.run.dir=run"],
                    tmp_path, extra_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = result(tmp_path / "run")
    assert list(out["metrics"]) == ["val/loss"]  # no val/acc, no test/*: nothing invented
    assert "val/loss" in proc.stdout.split("Final metrics:")[1]
    assert out["history"]["step"] == list(range(SPE))  # stopped after epoch 1
    assert out["history"]["val_acc"] == []
