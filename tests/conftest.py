"""Shared fixtures: a tiny LightningModule that knows nothing of lr-plugins, and its data."""

from __future__ import annotations

import os

import lightning.pytorch as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lr_plugins.distributed import with_clean_exit

os.environ.setdefault("PYTHONHASHSEED", "0")


class TinyModule(L.LightningModule):
    """A plain regression module: ``configure_optimizers`` returns just an optimizer."""

    def __init__(self, lr: float = 0.1, optimizer: str = "sgd", groups: tuple[float, ...] | None = None):
        super().__init__()
        self.lr, self.optimizer_name, self.groups = lr, optimizer, groups
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        if self.groups:
            params = [
                {"params": self.body.parameters(), "lr": self.groups[0]},
                {"params": self.head.parameters(), "lr": self.groups[1]},
            ]
        else:
            params = self.parameters()
        if self.optimizer_name == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9)


def make_loader(n: int = 64, batch_size: int = 8, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class LRRecorder(L.Callback):
    """Records, right before each optimizer step, the LR and momentum that step uses."""

    def __init__(self):
        self.lrs: list[list[float]] = []
        self.momenta: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs.append([g["lr"] for g in optimizer.param_groups])
        g = optimizer.param_groups[0]
        self.momenta.append(g["betas"][0] if "betas" in g else g.get("momentum", 0.0))


def make_trainer(tmp_path, callbacks, **kwargs) -> L.Trainer:
    defaults = dict(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    defaults.update(kwargs)
    return L.Trainer(callbacks=with_clean_exit(callbacks, defaults.get("strategy")), **defaults)


@pytest.fixture
def tiny_module():
    return TinyModule


@pytest.fixture
def loader():
    return make_loader
