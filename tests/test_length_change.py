"""Resuming with another length of training (issue 17.5): seamless, re-planned, or refused before any step.

Real Trainer fits of 8 batches per epoch: an uninterrupted fit is the reference for every LR a
resumed fit uses (recorded right before each optimizer step), and the refusals must come before
the first resumed step, on one line, with the LR before and after and both ways on.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from test_callback_resume import SaveAt

from lr_plugins import SGDR, StepDecay, WarmupCosine


def run(tmp_path, schedule, *, stops=(), ckpt_path=None, **trainer_kwargs):
    rec = LRRecorder()
    trainer_kwargs.setdefault("max_epochs", 5)
    trainer = make_trainer(tmp_path, [schedule, rec, SaveAt(tmp_path, stops)], **trainer_kwargs)
    torch.manual_seed(0)
    trainer.fit(TinyModule(), make_loader(), ckpt_path=ckpt_path)
    return trainer, [x[0] for x in rec.lrs]


def cosine(k: float, total: float, peak=0.1, floor=0.001) -> float:
    """The reference: WarmupCosine without warmup, by its formula (p clamped to 1)."""
    p = min(k / total, 1.0)
    return floor + (peak - floor) * (1 + math.cos(math.pi * p)) / 2


def cos_sched(**kw):
    return WarmupCosine(max_lr=0.1, min_lr=0.001, **kw)


# ---------------------------------------------------------------------- refused, with both ways on
def test_finished_cosine_resumed_with_more_epochs_is_refused_before_any_step(tmp_path):
    trainer, lrs = run(tmp_path / "a", cos_sched())
    trainer.save_checkpoint(tmp_path / "done.ckpt")
    assert lrs[-1] == pytest.approx(cosine(39, 40))
    rec = LRRecorder()
    trainer = make_trainer(tmp_path / "b", [cos_sched(), rec], max_epochs=10)
    with pytest.raises(ValueError) as info:
        trainer.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / "done.ckpt")
    msg = str(info.value)
    assert "\n" not in msg and rec.lrs == []
    assert msg.startswith("WarmupCosine cannot resume at optimizer step 40 with another length of training")
    # the LR before (old plan: the floor) and after (new plan: back near the peak)
    assert f"would use LR {cosine(40, 80):.6g} instead of {cosine(39, 40):.6g}" in msg  # the LR in use: step 39's
    assert "trainer.max_epochs=5" in msg
    assert "on_length_change='continue'" in msg and "++schedule.on_length_change=continue" in msg


def test_step_unit_cosine_with_another_accumulation_is_refused_naming_it(tmp_path):
    run(tmp_path / "a", cos_sched(unit="step"), stops=(24,))
    trainer = make_trainer(tmp_path / "b", [cos_sched(unit="step")], max_epochs=5, accumulate_grad_batches=2)
    with pytest.raises(ValueError, match=r"8 optimizer steps per epoch: the same accumulate_grad_batches"):
        trainer.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / "a" / "step=24.ckpt")


# ---------------------------------------------------------------------- seamless
def test_accumulation_doubled_on_resume_keeps_the_epoch_time(tmp_path):
    """accumulate 1 -> 2 at epoch 3 of 5: each resumed step is two steps of the old curve, ending at its floor."""
    _, full = run(tmp_path / "a", cos_sched(), stops=(24,))
    _, resumed = run(tmp_path / "b", cos_sched(), ckpt_path=tmp_path / "a" / "step=24.ckpt", accumulate_grad_batches=2)
    assert resumed == full[24::2]  # bit-identical to the uninterrupted fit at the same epoch time
    assert min(resumed) > 0.001  # never the LR-0 (floor) run the old plan gave


def test_a_warp_in_the_checkpoint_composes_on_a_second_resume(tmp_path):
    _, once = run(tmp_path / "b", cos_sched(), stops=(28,), ckpt_path=_first(tmp_path), accumulate_grad_batches=2)
    _, twice = run(tmp_path / "c", cos_sched(), ckpt_path=tmp_path / "b" / "step=28.ckpt", accumulate_grad_batches=2)
    assert once[4:] == twice  # steps 28.. of the once-resumed fit
    state = torch.load(tmp_path / "b" / "step=28.ckpt", weights_only=True)["callbacks"]["lr_plugins.schedule"]
    assert state["warp"] == {"anchor": 24, "at": 24.0, "rate": 2.0, "total": 40.0, "steps_per_epoch": 8.0}


def _first(tmp_path):
    run(tmp_path / "a", cos_sched(), stops=(24,))
    return tmp_path / "a" / "step=24.ckpt"


@pytest.mark.parametrize("make", [lambda: SGDR(max_lr=0.1, cycle_length=1.5, cycle_mult=2),
                                  lambda: StepDecay(max_lr=0.1, step_size=2, unit="step"),
                                  lambda: cos_sched(warmup=2)], ids=["SGDR", "StepDecay", "WarmupCosine-in-warmup"])
@pytest.mark.parametrize("epochs", [3, 8])
def test_length_free_prefix_resumes_seamlessly_with_a_shorter_or_longer_training(tmp_path, make, epochs):
    """Resumed at step 16 (epoch 2) with 3 or 8 epochs: the LR is that of a fresh fit of that length."""
    _, _ = run(tmp_path / "a", make(), stops=(16,))
    _, fresh = run(tmp_path / "f", make(), max_epochs=epochs)
    _, resumed = run(tmp_path / "b", make(), max_epochs=epochs, ckpt_path=tmp_path / "a" / "step=16.ckpt")
    assert resumed == fresh[16:]


# ---------------------------------------------------------------------- continue
def test_continue_re_plans_the_rest_from_the_current_lr_to_the_new_end(tmp_path):
    _, full = run(tmp_path / "a", cos_sched(), stops=(24,))
    _, resumed = run(tmp_path / "b", cos_sched(on_length_change="continue"), max_epochs=10,
                     ckpt_path=tmp_path / "a" / "step=24.ckpt")
    assert len(resumed) == 80 - 24
    assert resumed[0] == full[24]  # no jump
    want = [cosine(24 + (k - 24) * (40 - 24) / (80 - 24), 40) for k in range(24, 80)]
    assert resumed == pytest.approx(want, rel=1e-12)
    assert all(a > b for a, b in zip(resumed, resumed[1:]))  # still annealing, to the old plan's end


def test_continue_after_a_finished_sgdr_keeps_the_last_lr_not_the_next_restarts_peak(tmp_path):
    """32 steps of cycles of a quarter each, finished, resumed with 48: nothing of the curve is left, so the LR
    the last step used (its last cycle's trough) is kept; v(32) is the start of a fifth cycle, at the peak."""
    make = lambda: SGDR(max_lr=0.1, cycle_length=0.25, unit="fraction", on_length_change="continue")  # noqa: E731
    trainer, first = run(tmp_path / "a", make(), max_epochs=4)
    trainer.save_checkpoint(tmp_path / "done.ckpt")
    assert first[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 7 / 8)) / 2)  # step 31: 7/8 into cycle 3
    _, resumed = run(tmp_path / "b", make(), max_epochs=6, ckpt_path=tmp_path / "done.ckpt")
    assert resumed == [first[-1]] * 16
    rec = LRRecorder()
    refuse = make_trainer(tmp_path / "c", [SGDR(max_lr=0.1, cycle_length=0.25, unit="fraction"), rec], max_epochs=6)
    with pytest.raises(ValueError, match=rf"instead of {first[-1]:.6g}\. Keep the old length"):
        refuse.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / "done.ckpt")
    assert rec.lrs == []


def test_on_length_change_is_an_option_validated_at_construction():
    with pytest.raises(ValueError, match=r"on_length_change='keep' is not allowed: on_length_change must be one of 'refuse', 'continue'"):
        SGDR(cycle_length=1, on_length_change="keep")
    s = SGDR(cycle_length=1, on_length_change="continue")
    assert s.config()["on_length_change"] == "continue" and "on_length_change=" in repr(s)


# ---------------------------------------------------------------------- the arithmetic, by hand
def test_replan_time_warp_and_continue_by_hand():
    from lr_plugins.length_change import Plan, replan

    epoch_cos = WarmupCosine(max_lr=1.0)
    old = Plan(steps_per_epoch=8, total_steps=40)
    follow, cont = replan(epoch_cos, old, 24, steps_per_epoch=4, total_steps=24 + 2 * 4)
    assert cont is None and (follow.rate, follow.curve_total, follow.curve_steps_per_epoch) == (2.0, 40.0, 8.0)
    assert follow.curve_step(30) == 36.0
    again, cont = replan(epoch_cos, follow, 28, steps_per_epoch=4, total_steps=32)
    assert cont is None and again is not follow and again.curve_step(29) == 34.0
    step_cos = WarmupCosine(max_lr=1.0, unit="step")
    follow, cont = replan(step_cos, old, 24, steps_per_epoch=8, total_steps=80)
    assert cont is not None and cont.curve_total == 40 and cont.curve_step(80) == pytest.approx(40.0)
    assert follow.curve_total == 80 and not follow.warped
    assert replan(step_cos, old, 0, steps_per_epoch=4, total_steps=20) == (Plan(4, 20), None)


# ---------------------------------------------------------------------- the wsd preset (unit: fraction)
def _wsd():
    from lr_plugins import WarmupStableDecay

    return WarmupStableDecay(max_lr=0.1, min_lr=0.0, warmup=0.1, decay=0.2, unit="fraction")


def test_the_wsd_preset_resumed_in_its_stable_phase_decays_at_the_new_end(tmp_path):
    """Fractions of training: the warmup ran under the old length; in the stable phase both
    lengths hold the peak, so a longer training continues seamlessly and decays at its own end."""
    _, first = run(tmp_path / "a", _wsd(), stops=(16,))  # 5 epochs x 8 steps; stable from step 4 to 32
    assert first[16] == 0.1
    _, resumed = run(tmp_path / "b", _wsd(), ckpt_path=tmp_path / "a" / "step=16.ckpt", max_epochs=10)
    reference = _wsd().preview(80)  # a fresh 10-epoch wsd: the same LR from the resume step on
    assert resumed == reference[16:].tolist()
    assert resumed[0] == 0.1 and resumed[-1] < 0.01


def test_the_wsd_preset_resumed_in_its_warmup_or_decay_with_another_length_is_refused(tmp_path):
    run(tmp_path / "a", _wsd(), stops=(2, 36))
    for stop in (2, 36):  # in the warmup (it would change slope), in the decay (it would jump)
        trainer = make_trainer(tmp_path / f"b{stop}", [_wsd()], max_epochs=10)
        with pytest.raises(ValueError, match="cannot resume at optimizer step"):
            trainer.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / "a" / f"step={stop}.ckpt")


def test_docstring_examples():
    import doctest

    import lr_plugins.length_change as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
