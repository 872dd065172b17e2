"""Demo models: shapes, and a real fit that learns the digits data set."""

from __future__ import annotations

import lightning.pytorch as L
import pytest
import torch

from lr_plugins.app.data import DigitsDataModule
from lr_plugins.app.models import CNN1D, MLP, Classifier


def test_shapes():
    assert CNN1D(num_classes=10)(torch.zeros(3, 40)).shape == (3, 10)
    assert CNN1D(num_classes=5, in_channels=2)(torch.zeros(3, 2, 40)).shape == (3, 5)
    assert MLP(in_features=64)(torch.zeros(3, 64)).shape == (3, 10)


@pytest.mark.parametrize("optimizer, cls", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_configure_optimizers_returns_a_plain_optimizer(optimizer, cls):
    opt = Classifier(MLP(in_features=64), optimizer=optimizer, lr=0.01).configure_optimizers()
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.01


def test_bad_optimizer_is_refused():
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        Classifier(MLP(), optimizer="rmsprop")


def test_classifier_learns_digits(tmp_path):
    L.seed_everything(0, verbose=False)
    model = Classifier(MLP(in_features=64, hidden=64), lr=0.1)
    trainer = L.Trainer(max_epochs=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    dm = DigitsDataModule()
    trainer.fit(model, datamodule=dm)
    (result,) = trainer.test(model, datamodule=dm, verbose=False)
    assert result["test/acc"] > 0.9  # chance is 0.1
