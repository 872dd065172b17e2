"""DDP: 2 CPU processes (ddp_spawn); the loss is averaged over ranks, every rank picks the same LR."""

from __future__ import annotations

import json

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from conftest import TinyModule, make_loader

from lr_plugins import SGDR, LRFinder
from lr_plugins.distributed import CleanDistributedExit


class RankLosses(TinyModule):
    """Records each rank's local loss of every training_step call."""

    def __init__(self):
        super().__init__(lr=0.05)
        self.local: list[float] = []

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.local.append(float(loss))
        return loss


class Report(L.Callback):
    """Each rank writes its finder result, its local losses and the schedule's peak to a JSON file."""

    def __init__(self, folder, finder, schedule):
        self.folder, self.finder, self.schedule = str(folder), finder, schedule

    def on_train_start(self, trainer, pl_module):
        r = self.finder.result
        n = len(r.lrs) if r.stop_reason != "non-finite" else r.diagnostics["steps"]
        record = {"rank": trainer.global_rank, "lrs": r.lrs, "losses": r.losses, "suggestion": r.suggestion,
                  "stop": r.stop_reason, "local": pl_module.local[:n], "max_lr": self.schedule.max_lr,
                  "lr_now": trainer.optimizers[0].param_groups[0]["lr"]}
        with open(f"{self.folder}/rank{trainer.global_rank}.json", "w") as f:
            json.dump(record, f)


@pytest.mark.slow
def test_ddp_spawn_all_ranks_agree(tmp_path):
    finder = LRFinder(min_lr=1e-4, max_lr=100.0, num_steps=40)
    schedule = SGDR(cycle_length=1)
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[finder, schedule, Report(tmp_path, finder, schedule), CleanDistributedExit()],
    )
    trainer.fit(RankLosses(), make_loader(n=64, batch_size=4))
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    # Same curve, same stop, same pick on both ranks, and it is what the schedule uses.
    assert r0["lrs"] == r1["lrs"] and r0["losses"] == r1["losses"] and r0["stop"] == r1["stop"]
    assert r0["suggestion"] == r1["suggestion"] == r0["max_lr"] == r1["max_lr"]
    assert r0["lr_now"] == r1["lr_now"] == pytest.approx(r0["suggestion"])
    # Each rank saw its own shard (different local losses); the recorded loss is their mean.
    n = len(r0["losses"])
    assert r0["local"][:n] != r1["local"][:n]
    np.testing.assert_allclose(r0["losses"], (np.array(r0["local"][:n]) + np.array(r1["local"][:n])) / 2, rtol=1e-5)
    assert r0["stop"] in ("diverged", "non-finite") and n < 40


class SyncedValidation(RankLosses):
    """Validation logs with sync_dist=True (as lr-train's models do): a collective on every rank."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y), sync_dist=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ddp_spawn_with_a_tensorboard_logger_finishes_and_ranks_agree(tmp_path):
    """issue 12.3: trainer.log_dir (a collective) used to be called by rank 0 alone, inside its
    output branch, while rank 1 went on to the sanity check's synced logging: a hang. It now
    resolves on every rank."""
    from lightning.pytorch.loggers import TensorBoardLogger

    finder = LRFinder(min_lr=1e-4, max_lr=100.0, num_steps=30)
    schedule = SGDR(cycle_length=1)
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1, logger=TensorBoardLogger(tmp_path, name="tb"),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=2,
        callbacks=[finder, schedule, Report(tmp_path, finder, schedule), CleanDistributedExit()],
    )
    trainer.fit(SyncedValidation(), make_loader(n=64, batch_size=4), make_loader(n=16, batch_size=4))
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["suggestion"] == r1["suggestion"] == r0["max_lr"] == r1["max_lr"]
    assert r0["lr_now"] == r1["lr_now"] == pytest.approx(r0["suggestion"])
    out = tmp_path / "tb" / "version_0" / "lr_finder"
    assert sorted(p.name for p in out.iterdir()) == ["lr_finder.csv", "lr_finder.png"]  # rank 0 wrote, once
