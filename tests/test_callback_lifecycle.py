"""A schedule through a fit's real life (issue 17): the step count changing during a fit, runs that end
early, resumes without the schedule or with another optimizer, and Lightning's own LR-owning callbacks.

Every fit is a real Lightning Trainer; the LR each optimizer step uses is recorded right before
the step and compared with the schedule's formula (``preview``) or an uninterrupted fit.
"""

from __future__ import annotations

import math
import time
import warnings

import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import BackboneFinetuning, GradientAccumulationScheduler, StochasticWeightAveraging
from test_callback import StopAt

from lr_plugins import SGDR, SnapshotEnsemble, WarmupCosine


def fit(tmp_path, schedule, module=None, *, extra=(), loader="default", ckpt_path=None, **kwargs):
    rec = LRRecorder()
    kwargs.setdefault("max_epochs", 4)
    trainer = make_trainer(tmp_path, [schedule, rec, *extra], **kwargs)
    torch.manual_seed(0)
    trainer.fit(module or TinyModule(), make_loader() if loader == "default" else loader, ckpt_path=ckpt_path)
    return trainer, rec


def cos(**kw):
    return WarmupCosine(max_lr=0.1, min_lr=0.001, **kw)


# ---------------------------------------------------------------------- 17.6: the count changes during a fit
def test_gradient_accumulation_scheduler_is_followed_in_epoch_time(tmp_path):
    """{0: 1, 2: 4}: 8 steps in epochs 0-1, 2 in epochs 2-3 (20, not the 32 planned at fit start)."""
    trainer, rec = fit(tmp_path, cos(), extra=[GradientAccumulationScheduler({0: 1, 2: 4})])
    assert trainer.global_step == 20
    ref = cos().preview(32, steps_per_epoch=8).tolist()  # the curve in epoch time: 8 steps per epoch
    assert [x[0] for x in rec.lrs] == ref[:16] + ref[16::4]
    assert rec.lrs[-1][0] < 0.005  # annealed to near its floor (0.001) at the real end


def test_step_unit_cosine_re_plans_when_accumulation_changes_mid_fit(tmp_path):
    with pytest.warns(UserWarning, match=r"the fit changed at epoch 2 \(optimizer step 16\): 8 -> 2 optimizer steps "
                                          r"per epoch, 32 -> 20 in all; the rest of the curve is re-planned"):
        trainer, rec = fit(tmp_path, cos(unit="step"), extra=[GradientAccumulationScheduler({0: 1, 2: 4})])
    lrs = [x[0] for x in rec.lrs]
    assert lrs[:16] == cos(unit="step").preview(32).tolist()[:16]
    # continue: v(k) = 16 + (k - 16) * (32 - 16) / (20 - 16), the old plan's end at the real end
    want = [cos(unit="step").lr(16 + (k - 16) * 4.0, 32, 1, 0.1) for k in range(16, 20)]
    assert lrs[16:] == want and trainer.optimizers[0].param_groups[0]["lr"] == lrs[-1]


class GrowingData(TinyModule):
    """Its train loader grows every epoch (reload_dataloaders_every_n_epochs=1): 4, 8, 12 batches."""

    def train_dataloader(self):
        return make_loader(n=32 * (self.trainer.current_epoch + 1))


def test_a_growing_data_loader_is_followed_in_epoch_time(tmp_path):
    trainer, rec = fit(tmp_path, cos(), GrowingData(), loader=None, max_epochs=3, reload_dataloaders_every_n_epochs=1)
    assert trainer.global_step == 4 + 8 + 12
    # epoch e has 4 (e + 1) steps; step j of it is at t = e + j / (4 (e + 1)) epochs of 3
    ref = [cos().body(e + j / (4 * (e + 1)), 3, 0.1, 1) for e in range(3) for j in range(4 * (e + 1))]
    assert [x[0] for x in rec.lrs] == pytest.approx(ref, rel=1e-12, abs=1e-15)


class TwoOptimizers(TinyModule):
    """Manual optimization, a GAN's shape: both optimizers step on every batch."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        a, b = self.optimizers()
        x, y = batch
        for opt, part in ((a, self.body), (b, self.head)):
            self.lrs.append(opt.param_groups[0]["lr"]) if opt is a else None
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.manual_backward(loss)
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.body.parameters(), lr=0.1), torch.optim.SGD(self.head.parameters(), lr=0.1)]


def test_manual_optimization_with_two_optimizers_anneals_over_its_real_length(tmp_path):
    module = TwoOptimizers()
    trainer, _ = fit(tmp_path, cos(), module, max_epochs=3)
    assert trainer.global_step == 48  # Lightning counts both optimizers' steps
    assert module.lrs == cos().preview(24, steps_per_epoch=8).tolist()  # 24 batches: the first optimizer's steps


def test_a_run_that_ends_before_its_schedule_says_so(tmp_path):
    schedule = cos()
    now, end = cos().lr_at(10, 32, 8), cos().lr_at(31, 32, 8)
    with pytest.warns(UserWarning) as caught:
        _, rec = fit(tmp_path / "a", schedule, extra=[StopAt(10)])
    assert [str(w.message) for w in caught if "training ended" in str(w.message)] == [
        f"WarmupCosine: training ended after 10 of the 32 planned optimizer steps (max_time, early stopping or a "
        f"stop request): the LR is {now:.6g}, where the schedule would have ended at {end:.6g}."]
    assert schedule.ended_early is True and len(rec.lrs) == 10
    whole = cos()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(tmp_path / "b", whole)
    assert whole.ended_early is False and not [w for w in caught if "training ended after" in str(w.message)]


class Slow(TinyModule):
    def training_step(self, batch, batch_idx):
        time.sleep(0.01)
        return super().training_step(batch, batch_idx)


def test_max_time_stop_is_reported(tmp_path):
    schedule = SGDR(max_lr=0.1, cycle_length=4)
    with pytest.warns(UserWarning, match=r"training ended after \d+ of the 800 planned"):
        fit(tmp_path, schedule, Slow(), max_epochs=100, max_time={"seconds": 0.3})
    assert schedule.ended_early is True


def test_sgdr_leaves_the_last_steps_lr_not_the_next_restarts_peak(tmp_path):
    trainer, rec = fit(tmp_path, SGDR(max_lr=0.1, cycle_length=1), max_epochs=2)
    last = trainer.optimizers[0].param_groups[0]["lr"]
    assert last == rec.lrs[-1][0] == SGDR(max_lr=0.1, cycle_length=1).lr_at(15, 16, 8) < 0.01


# ---------------------------------------------------------------------- 17.3: resume without the schedule
def test_resume_without_the_schedule_callback_is_told(tmp_path):
    trainer, _ = fit(tmp_path / "a", SGDR(max_lr=0.1, cycle_length=1), max_epochs=2)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    plain = make_trainer(tmp_path / "b", [], max_epochs=3)
    with pytest.warns(UserWarning, match=r"Please add the following callbacks: \['lr_plugins\.schedule'\]"):
        plain.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / "a.ckpt")


def test_two_schedule_callbacks_reach_the_one_schedule_error_even_on_resume(tmp_path):
    trainer, _ = fit(tmp_path / "a", SGDR(max_lr=0.1, cycle_length=1), max_epochs=1)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    for ckpt in (None, tmp_path / "a.ckpt"):
        rec = LRRecorder()
        both = make_trainer(tmp_path / "b", [SGDR(cycle_length=1), SGDR(cycle_length=2), rec], max_epochs=2)
        with pytest.raises(ValueError, match=r"The Trainer has 2 LR schedule callbacks \(SGDR, SGDR\).*Keep exactly one"):
            both.fit(TinyModule(), make_loader(), ckpt_path=ckpt)
        assert rec.lrs == []


def test_an_earlier_versions_checkpoint_state_is_still_read(tmp_path):
    trainer, _ = fit(tmp_path / "a", cos(), max_epochs=4, max_steps=16)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    ckpt = torch.load(tmp_path / "a.ckpt", weights_only=True)
    ckpt["lr_plugins.schedule"] = ckpt["callbacks"].pop("lr_plugins.schedule")  # where 0.x wrote it
    torch.save(ckpt, tmp_path / "old.ckpt")
    with pytest.raises(ValueError, match="WarmupCosine cannot resume at optimizer step 16"):  # 16 -> 32 steps
        fit(tmp_path / "b", cos(), ckpt_path=tmp_path / "old.ckpt")


# ---------------------------------------------------------------------- 17.11: refused before any step
def test_another_optimizer_class_on_resume_is_refused_naming_both(tmp_path):
    trainer, _ = fit(tmp_path / "a", SGDR(max_lr=0.1, cycle_length=1), max_epochs=1)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    rec = LRRecorder()
    t = make_trainer(tmp_path / "b", [SGDR(max_lr=0.1, cycle_length=1), rec], max_epochs=2)
    with pytest.raises(ValueError) as info:
        t.fit(TinyModule(optimizer="adam"), make_loader(), ckpt_path=tmp_path / "a.ckpt")
    assert str(info.value) == (
        "Cannot resume from this checkpoint: the checkpoint's optimizer 0 is SGD, this run's is Adam. Resume with "
        "the same optimizer(s) and param groups, or start a new run (without ckpt_path).")
    assert rec.lrs == []


def test_optimizer_change_helper_works_without_a_schedule(tmp_path):
    from lr_plugins.optimizer_check import optimizer_change

    trainer = make_trainer(tmp_path, [], max_epochs=1)
    trainer.fit(TinyModule(), make_loader())
    trainer.save_checkpoint(tmp_path / "plain.ckpt")
    ckpt = torch.load(tmp_path / "plain.ckpt", weights_only=True)
    adam = TinyModule(optimizer="adam").configure_optimizers()
    assert "has no betas, eps setting, which this run's Adam has" in optimizer_change(ckpt, [adam])
    grouped = TinyModule(groups=(0.1, 0.01)).configure_optimizers()
    assert optimizer_change(ckpt, [grouped]) == "the checkpoint's optimizer 0 has 1 param group(s), this run's SGD has 2"
    assert optimizer_change(ckpt, [TinyModule(lr=0.5).configure_optimizers()]) is None


def test_max_steps_beyond_the_schedule_range_names_max_steps(tmp_path):
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [SGDR(cycle_length=2), SnapshotEnsemble(), rec, StopAt(1)], max_epochs=-1,
                           max_steps=2**60)
    with pytest.raises(ValueError) as info:
        trainer.fit(TinyModule(), make_loader())
    assert str(info.value).startswith(f"trainer max_steps={2**60} is not allowed with SGDR")
    assert rec.lrs == []


# ---------------------------------------------------------------------- 17.7: callbacks that own the LR
def test_stochastic_weight_averaging_gets_the_lr_from_its_start(tmp_path):
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=3, annealing_epochs=1)
    with pytest.warns(UserWarning, match=r"SGDR hands the LR over to StochasticWeightAveraging from epoch 2"):
        _, rec = fit(tmp_path, SGDR(max_lr=0.2, cycle_length=1), extra=[swa], max_epochs=4)
    lrs = [x[0] for x in rec.lrs]
    assert lrs[:16] == SGDR(max_lr=0.2, cycle_length=1).preview(32, 8).tolist()[:16]
    assert lrs[24:] == [pytest.approx(0.05)] * 8  # SWALR's swa_lrs, not SGDR's next cycle


class WithBackbone(TinyModule):
    def __init__(self):
        super().__init__()
        self.backbone = self.body

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1, momentum=0.9)


def test_a_param_group_added_mid_fit_joins_the_schedule_at_its_ratio(tmp_path):
    bf = BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_ratio_lr=0.1)
    _, rec = fit(tmp_path, cos(), WithBackbone(), extra=[bf], max_epochs=3)
    head = [x[0] for x in rec.lrs]
    assert head == cos().preview(24, 8).tolist()
    assert all(len(x) == 2 for x in rec.lrs[8:])
    # The backbone group follows the schedule at 0.1 x the head's LR (its LR when added), every step.
    assert [x[1] for x in rec.lrs[8:]] == pytest.approx([0.1 * h for h in head[8:]], rel=1e-12)
    assert not math.isclose(rec.lrs[8][1], rec.lrs[15][1])


def test_manual_optimization_with_two_optimizers_resumes_bit_identically(tmp_path):
    from test_callback_resume import SaveAt

    full = TwoOptimizers()
    fit(tmp_path / "a", cos(), full, extra=[SaveAt(tmp_path, [20])], max_epochs=3)  # global step 20 = batch 10
    state = torch.load(tmp_path / "step=20.ckpt", weights_only=True)["callbacks"]["lr_plugins.schedule"]
    assert state["driven_steps"] == 10 and state["optimizers"] == ["SGD", "SGD"]
    resumed = TwoOptimizers()
    fit(tmp_path / "b", cos(), resumed, max_epochs=3, ckpt_path=tmp_path / "step=20.ckpt")
    assert resumed.lrs == full.lrs[10:]
