"""Plateau (issue 18.4): torch's ReduceLROnPlateau rule after a warmup, in a real Trainer, resumed exactly.

References: ``torch.optim.lr_scheduler.ReduceLROnPlateau`` fed the same metric sequence (its own
code, stepped once per value), and an uninterrupted fit for the resume.
"""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from test_schedules_parity import close

from lr_plugins import Plateau
from lr_plugins.schedules import PlateauCurve

SPE = 4  # optimizer steps per epoch: 32 samples, batches of 8


def torch_plateau_lrs(values, lr, **kw) -> list[float]:
    """The LR torch's ReduceLROnPlateau leaves after each value (the LR of the next epoch)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    out = []
    for v in values:
        sched.step(v)
        out.append(opt.param_groups[0]["lr"])
    return out


def metric_sequence(n: int, seed: int = 0) -> list[float]:
    """A noisy loss with plateaus: improves, stalls, improves again (with ties and NaN-free noise)."""
    rng = np.random.default_rng(seed)
    steps = np.repeat(rng.uniform(0.0, 0.3, size=n // 10 + 1), 10)[:n]
    return list(np.round(2.0 - np.cumsum(steps) / n * 5 + rng.normal(0, 0.02, n), 3))


KW = [dict(mode="min", factor=0.5, patience=3, threshold=1e-3, threshold_mode="rel", cooldown=2, min_lr=1e-6),
      dict(mode="min", factor=0.7, patience=0, threshold=0.01, threshold_mode="abs", cooldown=0, min_lr=0.0),
      dict(mode="max", factor=0.1, patience=5, threshold=1e-4, threshold_mode="rel", cooldown=1, min_lr=1e-9)]


@pytest.mark.parametrize("kw", KW)
def test_the_rule_equals_torch_reduce_lr_on_plateau_over_2000_values(kw):
    values = metric_sequence(2000) if kw["mode"] == "min" else [-v for v in metric_sequence(2000, seed=1)]
    ref = torch_plateau_lrs(values, 0.3, **kw)
    ours = PlateauCurve(max_lr=0.3, unit="step", **kw)
    got = []
    for v in values:
        ours.observe(v)
        got.append(ours.lr_at(0))
    close(got, ref)
    assert len(set(ref)) > 3  # the sequence does reduce the LR several times


class Scripted(TinyModule):
    """Logs ``val_loss = values[epoch]`` at each validation: a metric sequence fed through Lightning."""

    def __init__(self, values, lr=0.2):
        super().__init__(lr=lr)
        self.values = values

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(self.values[self.current_epoch], dtype=torch.float64))


def fit(tmp_path, values, epochs, schedule, ckpt_path=None, callbacks=()):
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec, *callbacks], max_epochs=epochs, limit_val_batches=1,
                           enable_checkpointing=bool(callbacks))
    loader = make_loader(n=32, batch_size=8)
    trainer.fit(Scripted(values), loader, make_loader(n=8, batch_size=8), ckpt_path=ckpt_path)
    return np.array([lrs[0] for lrs in rec.lrs])


@pytest.mark.parametrize("kw", KW[:2])
def test_in_a_trainer_each_epoch_uses_the_lr_torch_leaves_after_the_last_validation(tmp_path, kw):
    values = metric_sequence(25, seed=3)
    used = fit(tmp_path, values, 25, Plateau(monitor="val_loss", warmup=0, **kw))
    ref = [0.2] + torch_plateau_lrs(values, 0.2, **kw)[:-1]  # epoch e runs with the LR after value e-1
    close(used, np.repeat(ref, SPE))
    assert len(set(ref)) > 1


def test_resume_continues_the_rule_exactly(tmp_path):
    """The checkpoint after epoch 5 holds two bad epochs; the resumed fit reduces after epoch 7 as the
    uninterrupted one does (a rule started afresh would wait until epoch 10)."""
    kw = dict(factor=0.5, patience=3, cooldown=0)
    values = [9, 5, 4, 3, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8]
    full = fit(tmp_path / "full", values, 12, Plateau(warmup=1.5, **kw))
    assert list(full[::SPE]) == pytest.approx([0.0, 2 / 3 * 0.2] + [0.2] * 6 + [0.1] * 4)  # warmup, then halved at 8
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    first = fit(tmp_path / "a", values, 12, Plateau(warmup=1.5, **kw), callbacks=[ckpt])
    close(first, full)
    (path,) = (tmp_path / "ckpt").glob("epoch=5*.ckpt")
    state = torch.load(path, weights_only=True)[Plateau.STATE]
    assert (state["observed"], state["num_bad"], state["best"]) == (5, 2, 3.0)  # epoch 0 ends inside the warmup
    resumed = fit(tmp_path / "b", values, 12, Plateau(warmup=1.5, **kw), ckpt_path=str(path))
    close(resumed, full[6 * SPE:])


def test_warmup_ends_in_curve_time_after_a_resume_with_more_accumulation(tmp_path):
    """Warmup of 3 epochs; resumed after epoch 0 with accumulate 2 (v(k) = 4 + 2 (k - 4)): the value of
    epoch 1 (epoch time 2, still warming up) is not fed, as in the uninterrupted fit."""
    kw = dict(factor=0.5, patience=0, warmup=3)
    values = [9, 5, 6, 6, 6, 6]
    full = fit(tmp_path / "full", values, 6, Plateau(**kw))
    assert list(full[::SPE]) == pytest.approx([0.0, 0.2 / 3, 2 * 0.2 / 3, 0.2, 0.1, 0.05])  # fed from epoch 2: halved after 3 and 4
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    fit(tmp_path / "a", values, 6, Plateau(**kw), callbacks=[ckpt])
    (path,) = (tmp_path / "ckpt").glob("epoch=0*.ckpt")
    rec, schedule = LRRecorder(), Plateau(**kw)
    trainer = make_trainer(tmp_path / "b", [schedule, rec], max_epochs=6, limit_val_batches=1, accumulate_grad_batches=2)
    trainer.fit(Scripted(values), make_loader(n=32, batch_size=8), make_loader(n=8, batch_size=8), ckpt_path=str(path))
    assert [lrs[0] for lrs in rec.lrs] == list(full[4::2])  # the uninterrupted fit at the same epoch time
    assert schedule.observed == 4  # epochs 2..5


def test_a_monitor_no_one_logs_is_refused_at_the_first_validation_with_the_logged_names(tmp_path):
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [Plateau(monitor="val/loss"), rec], max_epochs=3, limit_val_batches=1)
    with pytest.raises(ValueError, match=r"monitor='val/loss' is not allowed: no metric of that name is logged "
                                         r"\(logged: 'val_loss'\)"):
        trainer.fit(Scripted([1.0, 1.0, 1.0]), make_loader(n=32, batch_size=8), make_loader(n=8, batch_size=8))
    assert len(rec.lrs) == SPE  # one epoch, then the first validation end


def test_without_validation_the_rule_reads_the_epochs_training_metrics(tmp_path):
    class TrainLogged(Scripted):
        def training_step(self, batch, batch_idx):
            self.log("train_score", float(self.values[self.current_epoch]), on_epoch=True, on_step=False)
            return super().training_step(batch, batch_idx)

    values = [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [Plateau(monitor="train_score", factor=0.5, patience=1), rec], max_epochs=6)
    trainer.fit(TrainLogged(values), make_loader(n=32, batch_size=8))
    ref = [0.2] + torch_plateau_lrs(values, 0.2, factor=0.5, patience=1)[:-1]
    close([lrs[0] for lrs in rec.lrs], np.repeat(ref, SPE))


@pytest.mark.parametrize("arg,value,exc,words", [
    ("factor", 1.0, ValueError, "factor=1.0 is not allowed"), ("factor", 0, ValueError, "factor=0"),
    ("patience", -1, ValueError, "patience=-1"), ("patience", 1.5, TypeError, "patience=1.5"),
    ("mode", "minimum", ValueError, "mode='minimum'"), ("threshold_mode", "relative", ValueError, "threshold_mode"),
    ("cooldown", -2, ValueError, "cooldown=-2"), ("monitor", "", TypeError, "monitor=''"),
    ("threshold", -0.1, ValueError, "threshold=-0.1"),
])
def test_bad_arguments_are_refused_in_one_line(arg, value, exc, words):
    with pytest.raises(exc) as info:
        Plateau(**{arg: value})
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_bad_checkpoint_state_is_refused_and_changes_nothing():
    s = PlateauCurve()
    with pytest.raises(ValueError, match="Plateau state"):
        s.load_rule_state({"reductions": 1})
    with pytest.raises(ValueError, match="reductions=-1"):
        s.load_rule_state({"reductions": -1, "best": 1.0, "num_bad": 0, "cooldown_counter": 0, "observed": 1})
    assert s.rule_state() == PlateauCurve().rule_state()


def test_lightning_is_imported():  # the module-level import of L is used by Scripted's base
    assert issubclass(Scripted, L.LightningModule)


class RankSkewed(Scripted):
    """Rank 1 logs a loss that keeps improving (no sync_dist), rank 0 one that stalls: unsynced metrics."""

    def validation_step(self, batch, batch_idx):
        v = self.values[self.current_epoch] - (self.current_epoch if self.global_rank == 1 else 0)
        self.log("val_loss", torch.tensor(float(v), dtype=torch.float64))

    def on_train_end(self):
        path = self.out / f"rank{self.global_rank}.txt"
        path.write_text(repr(self.lrs))

    def on_train_batch_start(self, batch, batch_idx):
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.slow  # two spawned processes
def test_under_ddp_every_rank_follows_rank_zeros_value(tmp_path):
    module = RankSkewed([5.0] * 6)
    module.out, module.lrs = tmp_path, []
    trainer = make_trainer(tmp_path, [Plateau(factor=0.5, patience=1)], max_epochs=6, limit_val_batches=1,
                           strategy="ddp_spawn", devices=2)
    trainer.fit(module, make_loader(n=64, batch_size=8), make_loader(n=16, batch_size=8))
    ranks = [eval((tmp_path / f"rank{r}.txt").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # rank 1's own (improving) loss would never reduce the LR
    ref = [0.2] + torch_plateau_lrs([5.0] * 6, 0.2, factor=0.5, patience=1)[:-1]
    close(ranks[0], np.repeat(ref, SPE))


class LogsOnRankZeroOnly(Scripted):
    """Logs the monitored loss from rank 0 alone (as ``rank_zero_only=True`` is meant): rank 1 has no such metric."""

    def validation_step(self, batch, batch_idx):
        if self.global_rank == 0:
            self.log("val_loss", torch.tensor(self.values[self.current_epoch], dtype=torch.float64), rank_zero_only=True)

    on_train_end = RankSkewed.on_train_end
    on_train_batch_start = RankSkewed.on_train_batch_start


@pytest.mark.slow  # two spawned processes
@pytest.mark.timeout(120)
def test_under_ddp_a_metric_logged_on_rank_zero_only_drives_every_rank(tmp_path):
    """Each rank used to check the monitored metric itself: rank 1 (which has no metric) stopped with
    'no metric of that name is logged' while rank 0 waited at the broadcast of its value."""
    module = LogsOnRankZeroOnly([5.0] * 6)
    module.out, module.lrs = tmp_path, []
    trainer = make_trainer(tmp_path, [Plateau(factor=0.5, patience=1)], max_epochs=6, limit_val_batches=1,
                           strategy="ddp_spawn", devices=2)
    trainer.fit(module, make_loader(n=64, batch_size=8), make_loader(n=16, batch_size=8))
    ranks = [eval((tmp_path / f"rank{r}.txt").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    ref = [0.2] + torch_plateau_lrs([5.0] * 6, 0.2, factor=0.5, patience=1)[:-1]
    close(ranks[0], np.repeat(ref, SPE))
