"""The schedule callbacks from a LightningCLI YAML config (jsonargparse), no Hydra involved."""

from __future__ import annotations

import math
import sys

import lightning.pytorch as L
import pytest

pytest.importorskip("jsonargparse")
from conftest import LRRecorder
from lightning.pytorch.cli import LightningCLI

CONFIG = """
seed_everything: 0
model:
  class_path: lr_plugins.app.models.Classifier
  init_args:
    net:
      class_path: lr_plugins.app.models.MLP
      init_args: {{in_features: 64, hidden: 32}}
    lr: 0.05
data:
  class_path: lr_plugins.app.data.DigitsDataModule
  init_args: {{batch_size: 64}}
trainer:
  max_epochs: 3
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: lr_plugins.SGDR
      init_args: {{{sgdr}}}
"""


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cli"])  # LightningCLI(args=...) warns about pytest's own argv


def _cli(tmp_path, sgdr: str) -> LightningCLI:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(sgdr=sgdr))
    return LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=["--config", str(path)],
        run=False,
        save_config_callback=None,
    )


def test_sgdr_from_lightning_cli_yaml_sets_the_lr(tmp_path):
    cli = _cli(tmp_path, "max_lr: 0.1, cycle_length: 1, cycle_mult: 2.0")
    (sgdr,) = [c for c in cli.trainer.callbacks if type(c).__name__ == "SGDR"]
    assert (sgdr.max_lr, sgdr.cycle_length, sgdr.cycle_mult) == (0.1, 1.0, 2.0)
    recorder = LRRecorder()
    cli.trainer.callbacks.append(recorder)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    spe = math.ceil(round(1348 * 0.9) / 64)  # digits train split: 1213 samples
    assert len(recorder.lrs) == 3 * spe
    for step, (lr,) in enumerate(recorder.lrs):
        t = step / spe  # cycles [0, 1) and [1, 3) epochs (T_0 = 1, T_mult = 2)
        t_cur, t_i = (t, 1.0) if t < 1 else (t - 1, 2.0)
        assert lr == pytest.approx(0.05 * (1 + math.cos(math.pi * t_cur / t_i)), rel=1e-6)


@pytest.mark.parametrize("bad, text", [("max_lr: abc, cycle_length: 1", "max_lr"), ("max_lrr: 0.1, cycle_length: 1", "max_lrr")])
def test_lightning_cli_rejects_bad_callback_args(tmp_path, bad, text, capsys):
    with pytest.raises(SystemExit) as err:
        _cli(tmp_path, bad)
    assert err.value.code != 0
    assert text in capsys.readouterr().err
