"""The demo data's training order (lr_plugins.app.sampling): a shuffle of (seed, epoch) and a train loader whose
position in its epoch is saved in Lightning's checkpoints, so a resumed fit, mid-epoch or at an epoch's end, trains
the very batches of an uninterrupted one; under DDP Lightning's DistributedSampler takes over."""

from __future__ import annotations

import json

import lightning.pytorch as L
import pytest
import torch
from lifecycle_helpers import SignalAtStep

from lr_plugins import WarmupCosine
from lr_plugins.app.data import DigitsDataModule
from lr_plugins.app.models import MLP, Classifier
from lr_plugins.app.sampling import EpochShuffle, ResumableLoader
from lr_plugins.app.signals import Interrupted, Interruption

SPE = 5  # limit_train_batches: batches (optimizer steps) per epoch


def test_epoch_shuffle_is_a_permutation_that_depends_only_on_seed_and_epoch():
    data = range(100)
    walked = EpochShuffle(data, seed=3)
    orders = []
    for epoch in range(3):
        walked.set_epoch(epoch)
        orders.append(list(walked))
        assert list(walked) == orders[-1]  # a second pass of the same epoch: the same order
    for epoch, order in enumerate(orders):
        assert sorted(order) == list(range(100))
        fresh = EpochShuffle(data, seed=3)  # a resumed run: no epoch before this one was drawn
        fresh.set_epoch(epoch)
        assert list(fresh) == order
    assert len({tuple(o) for o in orders}) == 3  # each epoch its own order
    other = EpochShuffle(data, seed=4)
    assert list(other) != orders[0]


class Batches(L.Callback):
    """Per optimizer step: the batch's labels and the bits of its input sum, and the training loss."""

    def __init__(self, path=None):
        self.path, self.steps = path, {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        x, y = batch
        self.steps[trainer.global_step - 1] = (y.tolist(), float(x.double().sum()).hex(), float(outputs["loss"]).hex())

    def on_fit_end(self, trainer, pl_module):
        if self.path is not None:
            with open(f"{self.path}.rank{trainer.global_rank}.json", "w") as f:
                json.dump({str(k): v for k, v in self.steps.items()}, f)
            with open(f"{self.path}.rank{trainer.global_rank}.loader.json", "w") as f:
                dl = trainer.train_dataloader
                json.dump([type(dl).__name__, type(dl.sampler).__name__, dl.position is trainer.datamodule._position], f)


def _fit(tmp_path, epochs, extra=(), ckpt_path=None, **kwargs):
    L.seed_everything(0, verbose=False)
    model = Classifier(MLP(in_features=64, hidden=32))
    record = Batches(kwargs.pop("record_path", None))
    # A schedule callback sets up the train loader at fit start, before Lightning reads the checkpoint (as in lr-train).
    trainer = L.Trainer(max_epochs=epochs, limit_train_batches=SPE, limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", devices=kwargs.pop("devices", 1), default_root_dir=tmp_path,
                        callbacks=[WarmupCosine(max_lr=0.1, warmup=2, unit="step"), record, *extra], **kwargs)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, seed=0), ckpt_path=ckpt_path)
    return trainer, record.steps


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference fit (2 epochs), which also saves a checkpoint at the end of epoch 0."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    root = tmp_path_factory.mktemp("ref")
    ckpt = ModelCheckpoint(dirpath=root, save_top_k=-1, filename="{epoch}")
    return _fit(root, epochs=2, extra=[ckpt])[1], root / "epoch=0.ckpt"


def test_a_sigterm_mid_epoch_then_resume_trains_the_uninterrupted_batches(tmp_path, uninterrupted):
    reference, _ = uninterrupted
    assert sorted(reference) == list(range(2 * SPE))
    stop = Interruption(tmp_path / "ckpt")
    with pytest.raises(Interrupted), stop.watching():
        _fit(tmp_path, epochs=2, extra=[stop, SignalAtStep(6)])  # epoch 1: 2 batches done, 3 left
    _, resumed = _fit(tmp_path, epochs=2, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert sorted(resumed) == [7, 8, 9]
    assert resumed == {s: reference[s] for s in resumed}  # same batches, same order, same loss: bit for bit


def test_an_epoch_end_resume_shuffles_the_next_epoch_as_the_uninterrupted_run(tmp_path, uninterrupted):
    reference, epoch_end = uninterrupted
    _, resumed = _fit(tmp_path, epochs=2, ckpt_path=epoch_end)
    assert sorted(resumed) == list(range(SPE, 2 * SPE))
    assert resumed == {s: reference[s] for s in resumed}
    assert [reference[s][0] for s in range(SPE)] != [b[0] for b in resumed.values()]  # not epoch 0's order again


def test_the_loader_skips_only_in_the_epoch_it_was_saved_in():
    data = torch.arange(10)
    loader = ResumableLoader(data, batch_size=4, sampler=EpochShuffle(data, seed=0))
    loader.sampler.set_epoch(2)
    full = [b.tolist() for b in loader]
    loader.load_state_dict({"epoch": 2, "batches": 2})
    assert [b.tolist() for b in loader] == full[2:] and loader.state_dict() == {"epoch": 2, "batches": 3}
    loader.load_state_dict({"epoch": 1, "batches": 3})  # the end of epoch 1: epoch 2 starts at its beginning
    assert [b.tolist() for b in loader] == full


@pytest.mark.slow  # ~30 s: two 2-process DDP fits
def test_ddp_uses_lightnings_distributed_sampler_and_resumes_mid_epoch(tmp_path):
    """Under DDP Lightning replaces EpochShuffle by its DistributedSampler (set_epoch each epoch) and keeps the
    resumable loader: a fit resumed from a mid-epoch checkpoint trains each rank's uninterrupted batches."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=7, save_top_k=-1, filename="{step}")
    _fit(tmp_path, epochs=2, extra=[ckpt], devices=2, strategy="ddp_spawn", record_path=tmp_path / "ref")
    _fit(tmp_path, epochs=2, devices=2, strategy="ddp_spawn", record_path=tmp_path / "resumed",
         ckpt_path=tmp_path / "ckpt" / "step=7.ckpt")
    ranks = []
    for rank in (0, 1):
        ref = json.loads((tmp_path / f"ref.rank{rank}.json").read_text())
        resumed = json.loads((tmp_path / f"resumed.rank{rank}.json").read_text())
        assert sorted(resumed, key=int) == ["7", "8", "9"]
        assert resumed == {s: ref[s] for s in resumed}
        assert json.loads((tmp_path / f"ref.rank{rank}.loader.json").read_text()) == [
            "ResumableLoader", "DistributedSampler", True]
        ranks.append(ref)
    assert [b[0] for b in ranks[0].values()] != [b[0] for b in ranks[1].values()]  # each rank its own share
    epoch = [[ranks[0][str(s)][0] for s in range(e * SPE, (e + 1) * SPE)] for e in (0, 1)]
    assert epoch[0] != epoch[1]  # Lightning's set_epoch reaches the DistributedSampler
