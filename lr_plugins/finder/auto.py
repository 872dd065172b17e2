"""``suggestion="auto"``: the pick rule that fits the schedule that follows the test.

A short range test sees only the next few steps. Trained at a constant LR, the model lives with
the pick for the whole run; an annealed schedule spends most of its steps well below its peak, so
a higher peak may suit it. So ``auto`` tells the two apart and records which it saw:

* no schedule callback (the optimizer's LR, constant or moved by the module's own torch
  scheduler): :data:`CONSTANT_RULE` (``steepest``);
* a schedule callback whose curve is *annealed*: :data:`ANNEALED_RULE`; else :data:`CONSTANT_RULE`.

:data:`ANNEALED_RULE` is ``steepest`` too, for now: a rule for annealed schedules enters only
after a pre-registered test on fresh tasks keeps it within 2 points of the grid best (issue 14).
The candidate ``basin`` failed it (3/5 tasks annealed, 2/5 constant;
``docs/research/lr-finder-schedule.md``) and moved to the lab; so the reason of an annealed
schedule says that steepest stands in. A rule that passes a new test slots in by setting
:data:`ANNEALED_RULE` (one line; the stand-in note then goes away by itself).

"Annealed" is read from the schedule's own curve, never from a list of classes: with ``lr(k)`` the
planned LR of optimizer step ``k`` over the whole planned training (``lr_at``, warm-up included;
sampled at up to 2001 evenly spaced steps), the schedule is annealed when

    ``mean_k lr(k) <= ANNEALED_BELOW * max_k lr(k)``  (``ANNEALED_BELOW = 0.75``),

i.e. when it spends its training on average well below its peak. WarmupCosine, OneCycle, SGDR
and StepDecay's usual milestones average about half their peak; a Constant (even with a warm-up
of a fifth of training) averages 0.9 or more. A schedule on an infinite training is read over its
first 100 epochs.

Example:
    >>> from lr_plugins import Constant, WarmupCosine
    >>> resolve_rule(WarmupCosine(warmup=1), total_steps=1000, steps_per_epoch=100)  # doctest: +NORMALIZE_WHITESPACE
    ('steepest', 'WarmupCosine is annealed: its planned LR averages 0.50 x its peak over 1000 steps
    (annealed: <= 0.75); no rule for annealed schedules has passed the fresh-task test yet, so steepest')
    >>> resolve_rule(Constant(warmup=1), total_steps=1000, steps_per_epoch=100)
    ('steepest', 'Constant is not annealed: its planned LR averages 0.95 x its peak over 1000 steps (annealed: <= 0.75)')
    >>> resolve_rule(None)
    ('steepest', 'no schedule callback: constant LR')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["resolve_rule", "planned_ratio", "planned_total", "CONSTANT_RULE", "ANNEALED_RULE", "ANNEALED_BELOW",
           "STAND_IN"]

#: The rule ``auto`` uses for a constant LR or no schedule.
CONSTANT_RULE = "steepest"
#: The rule ``auto`` uses for an annealed schedule (``steepest`` until a rule passes a fresh-task test).
ANNEALED_RULE = "steepest"
#: Appended to an annealed schedule's reason while :data:`ANNEALED_RULE` is the constant-LR rule.
STAND_IN = "no rule for annealed schedules has passed the fresh-task test yet, so {rule}"
#: A schedule whose mean planned LR is at most this fraction of its peak is annealed.
ANNEALED_BELOW = 0.75
_SAMPLES = 2001
_HORIZON_EPOCHS = 100


def planned_total(max_steps: int | None, max_epochs: int | None, steps_per_epoch: float) -> float:
    """Optimizer steps a Trainer with these limits plans (Lightning's rule: 1000 epochs if neither is set).

    Example:
        >>> planned_total(-1, 5, 10), planned_total(30, 5, 10), planned_total(None, -1, 10)
        (50.0, 30.0, inf)
    """
    steps = math.inf if max_steps is None or max_steps < 0 else float(max_steps)
    if max_epochs is None:
        max_epochs = 1000 if math.isinf(steps) else -1
    epochs = math.inf if max_epochs < 0 else float(max_epochs) * steps_per_epoch
    return min(steps, epochs)


def planned_ratio(schedule: Any, total_steps: float, steps_per_epoch: float) -> tuple[float, int]:
    """``(mean lr / max lr, steps)`` of ``schedule``'s planned curve over ``total_steps`` optimizer steps.

    An infinite ``total_steps`` is read over the first 100 epochs (steps_per_epoch finite) or 10000 steps.
    """
    if not math.isfinite(total_steps):
        total_steps = _HORIZON_EPOCHS * steps_per_epoch if math.isfinite(steps_per_epoch) else 100 * _HORIZON_EPOCHS
    total = max(int(total_steps), 1)
    spe = steps_per_epoch if math.isfinite(steps_per_epoch) and steps_per_epoch > 0 else 1.0
    steps = np.unique(np.round(np.linspace(0, total - 1, min(total, _SAMPLES))).astype(int))
    lrs = np.array([schedule.lr_at(int(k), total, spe) for k in steps], dtype=float)
    peak = float(lrs.max())
    return (float(lrs.mean()) / peak if peak > 0 else 1.0), total


def resolve_rule(schedule: Any, total_steps: float = math.inf, steps_per_epoch: float = math.inf) -> tuple[str, str]:
    """The rule ``auto`` stands for with ``schedule`` (a schedule callback or curve, or ``None``), and why.

    Args:
        schedule: The schedule that follows the test, or ``None`` (constant LR).
        total_steps: Optimizer steps of the planned training (``inf``: infinite).
        steps_per_epoch: Optimizer steps per epoch.

    Returns:
        ``(rule, reason)``.
    """
    if schedule is None:
        return CONSTANT_RULE, "no schedule callback: constant LR"
    name = type(schedule).__name__
    try:
        ratio, steps = planned_ratio(schedule, total_steps, steps_per_epoch)
    except (ValueError, ZeroDivisionError) as e:
        return CONSTANT_RULE, f"{name}'s planned curve could not be read ({e}): treated as constant"
    if ratio <= ANNEALED_BELOW:
        reason = (f"{name} is annealed: its planned LR averages {ratio:.2f} x its peak over {steps} steps "
                  f"(annealed: <= {ANNEALED_BELOW:g})")
        if ANNEALED_RULE == CONSTANT_RULE:
            reason += "; " + STAND_IN.format(rule=ANNEALED_RULE)
        return ANNEALED_RULE, reason
    return CONSTANT_RULE, (
        f"{name} is not annealed: its planned LR averages {ratio:.2f} x its peak over {steps} steps "
        f"(annealed: <= {ANNEALED_BELOW:g})"
    )
