"""suggestion="auto": the rule follows the schedule that follows the test, read from its own curve."""

from __future__ import annotations

import math

import pytest
from conftest import TinyModule, make_loader, make_trainer

from lr_plugins import (
    SGDR,
    Constant,
    CyclicLR,
    ExponentialDecay,
    InverseTimeDecay,
    LRFinder,
    OneCycle,
    StepDecay,
    WarmupCosine,
    find_lr,
)
from lr_plugins.finder import auto
from lr_plugins.finder.auto import ANNEALED_BELOW, ANNEALED_RULE, CONSTANT_RULE, planned_total, resolve_rule

RANGE = dict(min_lr=1e-4, max_lr=1.0, num_steps=20)


def reference_ratio(schedule, total: int, spe: float) -> float:
    """mean / max of the schedule's full preview (every step): the independent reference."""
    lrs = schedule.preview(total, spe)
    return float(lrs.mean() / lrs.max())


@pytest.mark.parametrize(
    "make",
    [
        lambda: WarmupCosine(warmup=1),
        lambda: OneCycle(),
        lambda: SGDR(cycle_length=2),
        lambda: CyclicLR(step_size=1, min_lr=0.0),
        lambda: StepDecay(step_size=3),
        lambda: ExponentialDecay(rate=0.5),
        lambda: ExponentialDecay(rate=0.01),
        lambda: InverseTimeDecay(rate=0.05),
        lambda: Constant(),
        lambda: Constant(warmup=2),
    ],
)
def test_annealed_is_read_from_the_schedules_own_curve(make):
    """Over 10 epochs of 50 steps (500 steps, every step sampled), auto's rule is the annealed one
    exactly when the mean planned LR is <= 3/4 of its peak (the preview is the reference)."""
    schedule = make()
    rule, reason = resolve_rule(schedule, 500, 50)
    ratio = reference_ratio(schedule, 500, 50)
    assert rule == (ANNEALED_RULE if ratio <= ANNEALED_BELOW else CONSTANT_RULE)
    assert reason.startswith(f"{type(schedule).__name__} is {'' if ratio <= ANNEALED_BELOW else 'not '}annealed:")
    assert f"{ratio:.2f} x its peak" in reason


def test_same_class_two_answers_no_class_list():
    """One class, two curves: a slow exponential decay over a short run is not annealed, a fast one is."""
    slow, fast = ExponentialDecay(rate=0.01), ExponentialDecay(rate=1.0)
    assert resolve_rule(slow, 500, 50)[1].startswith("ExponentialDecay is not annealed")  # mean exp(-0.01 t): 0.95
    assert resolve_rule(fast, 500, 50)[1].startswith("ExponentialDecay is annealed")  # mean (1 - e^-10) / 10: 0.10
    assert reference_ratio(slow, 500, 50) == pytest.approx((1 - math.exp(-0.1)) / 0.1, abs=0.01)


def test_constant_and_cosine_known_answers():
    # Constant with a warm-up of 1 of 10 epochs: mean 0.95; WarmupCosine(warmup=1): 0.05 + 0.9 * 0.5 = 0.5.
    assert "averages 0.95 x" in resolve_rule(Constant(warmup=1), 1000, 100)[1]
    assert "averages 0.50 x" in resolve_rule(WarmupCosine(warmup=1), 1000, 100)[1]
    assert resolve_rule(None) == (CONSTANT_RULE, "no schedule callback: constant LR")


def test_infinite_training_is_read_over_100_epochs():
    rule, reason = resolve_rule(SGDR(cycle_length=1), math.inf, 10)
    assert rule == ANNEALED_RULE and reason.startswith("SGDR is annealed") and "over 1000 steps" in reason


def test_annealed_gets_steepest_and_says_why():
    """No rule for annealed schedules has passed the pre-registered fresh-task test (``basin`` failed and
    moved to the lab): an annealed schedule gets ``steepest``, and the reason says so plainly."""
    assert (ANNEALED_RULE, CONSTANT_RULE) == ("steepest", "steepest")
    rule, reason = resolve_rule(WarmupCosine(warmup=1), 1000, 100)
    assert rule == "steepest"
    assert reason == ("WarmupCosine is annealed: its planned LR averages 0.50 x its peak over 1000 steps "
                      "(annealed: <= 0.75); no rule for annealed schedules has passed the fresh-task test yet, "
                      "so steepest")
    assert "fresh-task" not in resolve_rule(Constant(warmup=1), 1000, 100)[1]


def test_a_future_annealed_rule_is_one_line(monkeypatch):
    """Setting ANNEALED_RULE is all it takes: annealed schedules get it, the stand-in note goes, constant ones
    keep steepest."""
    monkeypatch.setattr(auto, "ANNEALED_RULE", "valley")
    rule, reason = resolve_rule(WarmupCosine(warmup=1), 1000, 100)
    assert rule == "valley" and reason.startswith("WarmupCosine is annealed") and "fresh-task" not in reason
    assert resolve_rule(Constant(warmup=1), 1000, 100)[0] == "steepest"


def test_planned_total_follows_lightning():
    assert planned_total(-1, None, 7) == 7000  # Lightning: 1000 epochs when neither limit is set
    assert planned_total(None, 3, 7) == 21 and planned_total(10, 3, 7) == 10


def test_auto_is_the_default_and_the_result_says_why(tmp_path, capsys):
    assert LRFinder().suggestion == "auto"
    runs = {}
    for name, schedule in (("none", None), ("constant", Constant()), ("cosine", WarmupCosine())):
        finder = LRFinder(**RANGE)
        callbacks = [finder] + ([schedule] if schedule is not None else [])
        make_trainer(tmp_path, callbacks, max_epochs=3).fit(TinyModule(), make_loader(n=32))
        runs[name] = (finder.result, capsys.readouterr().out, schedule)
    none, constant, cosine = runs["none"][0], runs["constant"][0], runs["cosine"][0]
    assert (none.rule, none.reason) == ("steepest", "no schedule callback: constant LR")
    assert none.suggestion == none.suggestions["steepest"]
    assert constant.rule == "steepest" and constant.reason.startswith("Constant is not annealed")
    assert cosine.rule == ANNEALED_RULE and cosine.reason.startswith("WarmupCosine is annealed")
    assert cosine.reason.endswith("has passed the fresh-task test yet, so steepest")
    assert cosine.suggestion == cosine.suggestions[ANNEALED_RULE] == runs["cosine"][2].max_lr
    assert "[WarmupCosine is annealed: its planned LR averages" in runs["cosine"][1]  # the summary line
    assert "[no schedule callback: constant LR]" in runs["none"][1]


def test_a_rule_by_name_says_so(tmp_path):
    finder = LRFinder(**RANGE, suggestion="valley", verbose=False)
    make_trainer(tmp_path, [finder, WarmupCosine()], max_epochs=1).fit(TinyModule(), make_loader(n=32))
    assert (finder.result.rule, finder.result.reason) == ("valley", "suggestion='valley'")


def test_find_lr_resolves_from_its_schedule_and_hands_it_the_pick():
    """find_lr(schedule=...): auto reads that schedule over the training trainer_kwargs plan, and
    the pick reaches it through set_peak, so the same object can go into the training Trainer."""
    cosine = WarmupCosine(warmup=1)
    r = find_lr(TinyModule(), make_loader(n=32), schedule=cosine, trainer_kwargs={"max_epochs": 10}, **RANGE)
    assert r.rule == ANNEALED_RULE and "over 40 steps" in r.reason  # 10 epochs x 4 batches
    assert cosine.max_lr == r.suggestion == r.suggestions[ANNEALED_RULE]
    constant = Constant()
    r = find_lr(TinyModule(), make_loader(n=32), schedule=constant, **RANGE)
    assert r.rule == "steepest" and constant.max_lr == r.suggestion
    r = find_lr(TinyModule(), make_loader(n=32), **RANGE)
    assert (r.rule, r.reason) == ("steepest", "no schedule callback: constant LR")
    with pytest.raises(TypeError, match="schedule="):
        find_lr(TinyModule(), make_loader(n=32), schedule="cosine", **RANGE)
