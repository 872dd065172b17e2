"""Add an lr-plugins schedule to a LightningModule you already have: no Hydra, no changes to it.

The module below is plain Lightning: ``configure_optimizers`` returns just an optimizer. The
schedule is a callback; it sets the LR of every optimizer step and logs it (and the momentum)
to TensorBoard exactly as LearningRateMonitor does.

Run (a few seconds on a laptop CPU; scikit-learn's bundled digits, no download)::

    python examples/plain_lightning.py
    python examples/plain_lightning.py --schedule onecycle --epochs 8
    tensorboard --logdir runs/plain_lightning      # the lr-SGD and lr-SGD-momentum curves

The logs go to ``runs/plain_lightning/<schedule>/`` under the current folder (``--out`` to move
them); ``runs/`` is in the repository's .gitignore, so a run from a checkout leaves
``git status`` clean.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lr_plugins import SGDR, CyclicLR, OneCycle, WarmupCosine


class DigitsClassifier(L.LightningModule):
    """An ordinary LightningModule: it knows nothing about LR schedules."""

    def __init__(self, lr: float = 0.1):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test/acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def digits_loaders(batch_size: int = 64) -> tuple[DataLoader, DataLoader]:
    """Train (first 1500 images) and test (the other 297) loaders over sklearn's digits."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.int64)
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(x[:1500], y[:1500]), batch_size=batch_size, shuffle=True, generator=g)
    test = DataLoader(TensorDataset(x[1500:], y[1500:]), batch_size=512)
    return train, test


DEFAULT_OUT = "runs/plain_lightning"  # git-ignored (.gitignore: runs/)

SCHEDULES = {
    # The peak comes from max_lr; max_lr=None would use the optimizer's configured lr instead.
    "sgdr": lambda: SGDR(max_lr=0.1, min_lr=1e-3, cycle_length=1, cycle_mult=2, warmup=0.5),
    "warmup_cosine": lambda: WarmupCosine(max_lr=0.1, warmup=1),
    "onecycle": lambda: OneCycle(max_lr=0.2),
    "clr": lambda: CyclicLR(max_lr=0.2, min_lr=0.05, step_size=1),
}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="sgdr")
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--out", default=DEFAULT_OUT, help="TensorBoard log folder")
    args = parser.parse_args(argv)

    L.seed_everything(0, verbose=False)
    train, test = digits_loaders()
    schedule = SCHEDULES[args.schedule]()
    steps_per_epoch = len(train)
    total = args.epochs * steps_per_epoch
    # The curve is known before training: the same numbers the callback will apply.
    curve = schedule.preview(total, steps_per_epoch=steps_per_epoch)
    print(f"{schedule!r}\n{total} optimizer steps, LR from {curve[0]:.4g} to {curve[-1]:.4g}, peak {curve.max():.4g}")
    if hasattr(schedule, "cycle_ends"):
        print("cycle ends at steps:", schedule.cycle_ends(total, steps_per_epoch=steps_per_epoch))

    trainer = L.Trainer(
        max_epochs=args.epochs,
        callbacks=[schedule],  # <- the only lr-plugins line
        logger=TensorBoardLogger(args.out, name=args.schedule),
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,  # the LR of every step (as LearningRateMonitor, the schedule follows this)
    )
    model = DigitsClassifier()
    trainer.fit(model, train)
    acc = trainer.test(model, test, verbose=False)[0]["test/acc"]
    print(f"test accuracy {acc:.3f}; LR curve logged under {trainer.logger.log_dir}")
    return acc


if __name__ == "__main__":
    main()
