"""The schedules inside a real Lightning Trainer: the LR each optimizer step uses is ``preview()``.

The module (tests/conftest.py TinyModule) knows nothing of lr-plugins: ``configure_optimizers``
returns a plain optimizer, the callback does the rest.
"""

from __future__ import annotations

import math

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from conftest import TinyModule, make_loader, make_trainer

from lr_plugins import (
    SGDR,
    Constant,
    CyclicLR,
    ExponentialDecay,
    InverseTimeDecay,
    OneCycle,
    StepDecay,
    WarmupCosine,
)


class StepRecorder(L.Callback):
    """Right before each optimizer step: the global step, every group's LR and the momentum."""

    def __init__(self):
        self.steps: list[int] = []
        self.lrs: list[list[float]] = []
        self.momenta: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps.append(trainer.global_step)
        self.lrs.append([g["lr"] for g in optimizer.param_groups])
        g = optimizer.param_groups[0]
        self.momenta.append(g["betas"][0] if "betas" in g else g.get("momentum", 0.0))

    @property
    def lr0(self) -> list[float]:
        return [x[0] for x in self.lrs]


class StopAt(L.Callback):
    """Stops training after ``n`` optimizer steps (for infinite training)."""

    def __init__(self, n: int):
        self.n = n

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.n:
            trainer.should_stop = True


def fit(tmp_path, schedule, *, module=None, n=64, batch_size=8, extra=(), ckpt_path=None, **trainer_kwargs):
    rec = StepRecorder()
    trainer_kwargs.setdefault("max_epochs", 5)
    trainer = make_trainer(tmp_path, [schedule, rec, *extra], **trainer_kwargs)
    torch.manual_seed(0)
    trainer.fit(module or TinyModule(), make_loader(n=n, batch_size=batch_size), ckpt_path=ckpt_path)
    return trainer, rec


SCHEDULES = [
    WarmupCosine(max_lr=0.3, min_lr=0.01, warmup=1, hold=0.5),
    WarmupCosine(max_lr=0.3, warmup=3, warmup_start_lr=0.01, unit="step"),
    SGDR(max_lr=0.3, min_lr=0.001, cycle_length=1.5, cycle_mult=1.5, cycle_decay=0.8, warmup=0.25),
    SGDR(max_lr=0.3, cycle_length=7, cycle_mult=2, unit="step"),
    SGDR(max_lr=0.3, cycle_length=None, warmup=1),  # T_0 = (5 - 1) / 4 epochs
    CyclicLR(max_lr=0.3, min_lr=0.05, step_size=0.75, mode="triangular2"),
    CyclicLR(max_lr=0.3, min_lr=0.05, step_size=5, mode="exp_range", gamma=0.97, unit="step"),
    OneCycle(max_lr=0.3, pct_start=0.25, three_phase=True),
    OneCycle(max_lr=0.3, anneal="linear", warmup=2, unit="step"),
    StepDecay(max_lr=0.3, step_size=1.5, gamma=0.5),
    StepDecay(max_lr=0.3, milestones=[10, 25], unit="step"),
    ExponentialDecay(max_lr=0.3, rate=0.3, min_lr=0.1),
    InverseTimeDecay(max_lr=0.3, rate=0.5, staircase=True),
    Constant(max_lr=0.3, warmup=0.5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_lr_each_step_uses_is_preview(tmp_path, schedule):
    trainer, rec = fit(tmp_path, schedule)
    assert schedule.fit_steps_per_epoch == 8 and schedule.fit_total_steps == 40
    assert rec.steps == list(range(40))
    assert rec.lr0 == schedule.preview(40, steps_per_epoch=8).tolist()
    if schedule.cycles_momentum:
        assert rec.momenta == schedule.preview_momentum(40, steps_per_epoch=8).tolist()
    else:
        assert rec.momenta == [0.9] * 40  # left alone
    # After the last step the optimizer holds the LR that step used (not one past the planned end).
    assert trainer.optimizers[0].param_groups[0]["lr"] == schedule.lr_at(39, 40, 8)


def test_gradient_accumulation_gives_the_same_curve_per_optimizer_step(tmp_path):
    # 8 batches, accumulate 3 -> ceil(8/3) = 3 optimizer steps per epoch.
    acc = SGDR(max_lr=0.2, cycle_length=1.5, cycle_mult=2, warmup=0.5)
    _, rec_acc = fit(tmp_path / "a", acc, accumulate_grad_batches=3, max_epochs=6)
    assert acc.fit_steps_per_epoch == 3 and acc.fit_total_steps == 18
    plain = SGDR(max_lr=0.2, cycle_length=1.5, cycle_mult=2, warmup=0.5)
    _, rec_plain = fit(tmp_path / "b", plain, n=24, max_epochs=6)  # 3 batches, no accumulation
    assert rec_acc.steps == list(range(18))
    assert rec_acc.lrs == rec_plain.lrs
    assert rec_acc.lr0 == acc.preview(18, steps_per_epoch=3).tolist()
    # limit_train_batches counts too: 5 batches, accumulate 2 -> 3 optimizer steps per epoch.
    lim = SGDR(max_lr=0.2, cycle_length=1.5, cycle_mult=2, warmup=0.5)
    _, rec_lim = fit(tmp_path / "c", lim, accumulate_grad_batches=2, limit_train_batches=5, max_epochs=6)
    assert lim.fit_steps_per_epoch == 3 and rec_lim.lrs == rec_plain.lrs


@pytest.mark.parametrize("max_lr", [None, 0.5])
def test_param_groups_keep_their_ratio(tmp_path, max_lr):
    sched = WarmupCosine(max_lr=max_lr, min_lr=0.01, warmup=1)
    _, rec = fit(tmp_path, sched, module=TinyModule(lr=0.1, groups=(0.1, 0.02)), max_epochs=3)
    peak = 0.1 if max_lr is None else 0.5
    curve = WarmupCosine(max_lr=peak, min_lr=0.01, warmup=1).preview(24, steps_per_epoch=8)
    got = np.array(rec.lrs)
    np.testing.assert_allclose(got[:, 0], curve, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got[:, 1], curve * 0.2, rtol=1e-12, atol=0)  # lr_1 / lr_0 = 0.02 / 0.1
    assert got[:, 0].max() == pytest.approx(peak) and got[:, 1].max() == pytest.approx(peak * 0.2)


def test_fractional_epochs(tmp_path):
    # 8 steps/epoch; cycle 1.25 epochs = 10 steps; warmup 0.375 epochs = 3 steps.
    sched = SGDR(max_lr=0.2, cycle_length=1.25, warmup=0.375)
    _, rec = fit(tmp_path, sched, max_epochs=3)
    want = [0.2 * k / 3 for k in range(3)]
    want += [0.1 * (1 + math.cos(math.pi * ((k - 3) % 10) / 10)) for k in range(3, 24)]
    np.testing.assert_allclose(rec.lr0, want, rtol=1e-12, atol=1e-15)
    assert sched.cycle_ends(24, 8) == [12, 22]


@pytest.mark.parametrize("cls,kw", [(WarmupCosine, {}), (OneCycle, {})])
def test_infinite_training_refused_for_schedules_that_need_the_end(tmp_path, cls, kw):
    rec = StepRecorder()
    trainer = make_trainer(tmp_path, [cls(max_lr=0.1, **kw), rec, StopAt(5)], max_epochs=-1)
    with pytest.raises(ValueError, match=rf"{cls.__name__} needs the total number of optimizer steps.*max_epochs=-1"):
        trainer.fit(TinyModule(), make_loader())
    assert rec.steps == []


def test_sgdr_runs_with_infinite_epochs(tmp_path):
    sched = SGDR(max_lr=0.2, cycle_length=5, unit="step")
    _, rec = fit(tmp_path, sched, max_epochs=-1, max_steps=30)
    assert rec.lr0 == sched.preview(30).tolist()
    sched = SGDR(max_lr=0.2, cycle_length=5, unit="step")
    _, rec = fit(tmp_path, sched, max_epochs=-1, max_steps=-1, extra=[StopAt(20)])
    assert sched.fit_total_steps == math.inf
    assert rec.lr0 == sched.preview(20).tolist()


def test_two_schedule_callbacks_refused(tmp_path):
    rec = StepRecorder()
    trainer = make_trainer(tmp_path, [SGDR(cycle_length=1), Constant(), rec], max_epochs=1)
    with pytest.raises(ValueError, match=r"2 LR schedule callbacks \(SGDR, Constant\).*Keep exactly one"):
        trainer.fit(TinyModule(), make_loader())
    assert rec.steps == []


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("make", [lambda: CyclicLR(max_lr=0.05, min_lr=0.01, step_size=6, unit="step"),
                                  lambda: OneCycle(max_lr=0.05)], ids=["clr", "onecycle"])
def test_momentum_is_cycled_inversely(tmp_path, optimizer, make):
    sched = make()
    _, rec = fit(tmp_path, sched, module=TinyModule(lr=0.05, optimizer=optimizer), max_epochs=3)
    mom = sched.preview_momentum(24, 8)
    assert rec.momenta == mom.tolist()
    lrs = np.array(rec.lr0)
    assert np.argmax(lrs) == np.argmin(mom) and mom[np.argmin(lrs)] == pytest.approx(0.95)
    assert np.corrcoef(lrs, mom)[0, 1] < -0.99
    assert 0.85 <= mom.min() < 0.86 and mom.max() == pytest.approx(0.95)


class Adagrad(TinyModule):
    def configure_optimizers(self):
        return torch.optim.Adagrad(self.parameters(), lr=0.1)


def test_cycle_momentum_without_momentum_refused(tmp_path):
    trainer = make_trainer(tmp_path, [OneCycle(max_lr=0.1)], max_epochs=1)
    with pytest.raises(ValueError, match=r"cycle_momentum=True is not allowed with Adagrad.*cycle_momentum=False"):
        trainer.fit(Adagrad(), make_loader())
    sched = OneCycle(max_lr=0.1, cycle_momentum=False)
    _, rec = fit(tmp_path, sched, module=Adagrad(), max_epochs=1)
    assert rec.lr0 == sched.preview(8, 8).tolist()


@pytest.mark.parametrize(
    "sched,match",
    [
        (Constant(unit="step"), None),  # the optimizer's lr is NaN: see the test body
        (WarmupCosine(warmup=6), r"warmup=6.0 \(epochs\) is not allowed: it is longer than training"),
        (OneCycle(warmup=5), r"warmup=5.0 \(epochs\) is not allowed: it leaves 0 optimizer steps of 40"),
        (SGDR(cycle_length=1, min_lr=0.5), r"min_lr=0.5 is not allowed: it must be <= the peak LR \(optimizer 0's lr=0.1\)"),
    ],
    ids=["nan-lr", "warmup", "onecycle-no-steps", "min_lr"],
)
def test_trainer_dependent_checks_fail_before_the_first_step(tmp_path, sched, match):
    """Checks that need the Trainer (lengths, the optimizer's lr) run at fit start."""
    rec = StepRecorder()
    trainer = make_trainer(tmp_path, [sched, rec], max_epochs=5)
    lr = 0.1 if match else math.nan
    match = match or r"optimizer 0 has lr=nan in its first param group.*needs a finite lr_0 > 0"
    with pytest.raises(ValueError, match=match):
        trainer.fit(TinyModule(lr=lr), make_loader())
    assert rec.steps == []


# ---------------------------------------------------------------------- DDP
class FileRecorder(StepRecorder):
    """Writes this rank's LR trace to ``<dirpath>/rank<r>.json`` at train end (DDP children)."""

    def __init__(self, dirpath):
        super().__init__()
        self.dirpath = str(dirpath)

    def on_train_end(self, trainer, pl_module):
        import json
        import os

        path = os.path.join(self.dirpath, f"rank{trainer.global_rank}.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"steps": self.steps, "lrs": self.lrs, "momenta": self.momenta}, f)
        os.replace(path + ".tmp", path)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: OneCycle(max_lr=0.2, three_phase=True), id="onecycle"),  # ~10-30 s on 2 cores
        pytest.param(lambda: SGDR(max_lr=0.2, cycle_length=1.5, cycle_mult=1.5, warmup=0.5), id="sgdr",
                     marks=pytest.mark.slow),
    ],
)
def test_ddp_two_processes_apply_and_log_the_single_process_lr(tmp_path, make):
    """2-process DDP with a real TensorBoard logger: every rank uses the single-process LRs, and
    the event file (written by rank 0) holds the single-process series."""
    import json

    from lightning.pytorch.loggers import TensorBoardLogger
    from test_lr_monitor_parity import read_scalars

    rec = FileRecorder(tmp_path)
    trainer = make_trainer(tmp_path, [make(), rec], max_epochs=4, accelerator="cpu", devices=2,
                           strategy="ddp_spawn", logger=TensorBoardLogger(tmp_path, name="ddp"), log_every_n_steps=3)
    trainer.fit(TinyModule(), make_loader(n=64))  # each rank: 32 samples = 4 batches per epoch
    traces = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # The single-process reference: the same 4 optimizer steps per epoch.
    sched = make()
    _, single = fit(tmp_path / "single", sched, n=32, max_epochs=4, logger=TensorBoardLogger(tmp_path, name="single"),
                    log_every_n_steps=3)
    assert single.steps == list(range(16))
    for t in traces:
        assert t["steps"] == single.steps
        assert t["lrs"] == single.lrs
        assert t["momenta"] == single.momenta
    ddp_series = {k: v for k, v in read_scalars(tmp_path / "ddp").items() if k.startswith("lr-")}
    single_series = {k: v for k, v in read_scalars(tmp_path / "single").items() if k.startswith("lr-")}
    assert sorted(ddp_series) == ["lr-SGD", "lr-SGD-momentum"]
    assert ddp_series == single_series
    assert [s for s, _ in ddp_series["lr-SGD"]] == [2, 5, 8, 11, 14]
