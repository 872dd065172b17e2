"""When the length of training changes: the linear time warp that re-plans a curve.

A :class:`Plan` maps the real optimizer step ``k`` of a fit to the step the curve is evaluated
at, the *curve step* ``v(k)``; the curve then runs with its own total ``T_v`` and steps per epoch
``spe_v``:

    LR(k) = curve.lr(v(k), T_v, spe_v, peak),    v(k) = at + (k - anchor) * rate     (k >= anchor)

A plan that never changed is the identity (``v(k) = k``, ``T_v`` = the fit's total). When the
steps per epoch or the total change at real step ``s`` (a resume with another length, gradient
accumulation changed, a data loader that grew), :func:`replan` gives the plan that follows the
new length:

* the steps per epoch changed, ``unit="epoch"``: the epoch time stays continuous,
  ``rate' = rate * spe_old / spe_new`` (``unit="step"`` or ``"fraction"``: the rate is kept);
* ``T_v' = v(s) + (T_new - s) * rate'``: the curve ends where the new training does.

It is *seamless* when ``T_v'`` equals ``T_v`` or when every curve step run so far is one whose LR
does not depend on the length, ``v(s) <= min(free(T_v), free(T_v'))`` with
``free = curve.total_free_steps``, or when both lengths give the same LR at curve steps
``v(s) - 1`` and ``v(s)`` (a flat phase after a warmup counted in fractions of training, as in
the ``wsd`` preset's stable phase: no jump, and the new plan decays at its own end). Otherwise the LR at step ``s`` would jump, and the other
way on is to *continue*: re-plan the rest of the old curve from the current LR onto the steps
left, ending where the old plan ended,

    v(k) = v(s) + (k - s) * (T_v - v(s)) / (T_new - s),    T_v unchanged;

when the old plan had ended (``s >= N_old``) nothing of it is left: the LR the last step used,
that of ``v(N_old - 1)``, is kept to the new end (``Plan.used_step``).

Example:
    >>> from lr_plugins import WarmupCosine
    >>> cosine = WarmupCosine(max_lr=1.0, unit="step")
    >>> old = Plan(steps_per_epoch=10, total_steps=100)
    >>> follow, cont = replan(cosine, old, step=50, steps_per_epoch=10, total_steps=150)
    >>> cont is not None  # the cosine depends on the length from step 0: not seamless
    True
    >>> cont.curve_step(50), cont.curve_step(150), cont.curve_total
    (50.0, 100.0, 100.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Plan", "replan", "planned_curve_steps"]


@dataclass(frozen=True)
class Plan:
    """How real optimizer steps map onto a curve (see the module doc).

    Args:
        steps_per_epoch: The fit's real optimizer steps per epoch.
        total_steps: The fit's real total optimizer steps (``inf``: infinite training).
        anchor: ``s``, the real step the warp starts at.
        at: ``v(s)``, the curve step at the anchor.
        rate: Curve steps per real step after the anchor.
        curve_total: ``T_v``, the total the curve is evaluated with (nan: ``total_steps``).
        curve_steps_per_epoch: ``spe_v`` (nan: ``steps_per_epoch``).
    """

    steps_per_epoch: float
    total_steps: float
    anchor: int = 0
    at: float = 0.0
    rate: float = 1.0
    curve_total: float = math.nan
    curve_steps_per_epoch: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.curve_total):
            object.__setattr__(self, "curve_total", float(self.total_steps))
        if math.isnan(self.curve_steps_per_epoch):
            object.__setattr__(self, "curve_steps_per_epoch", float(self.steps_per_epoch))

    @property
    def warped(self) -> bool:
        """Whether ``v(k) != k`` for some step (the fit runs a re-planned curve)."""
        return not (self.at == self.anchor and self.rate == 1.0 and self.curve_steps_per_epoch == self.steps_per_epoch)

    def curve_step(self, step: int) -> float:
        """``v(step)``, the step the curve is evaluated at."""
        return self.at + (step - self.anchor) * self.rate

    def used_step(self, step: int) -> float:
        """The curve step whose LR optimizer ``step`` uses: ``v(step)``, or ``v(N - 1)`` from the end ``N`` on.

        Past the plan's last step the schedule writes no LR: the optimizer keeps the last step's
        (an SGDR whose cycle ends with the training does not jump to the next restart's peak).

        Example:
            >>> Plan(steps_per_epoch=10, total_steps=100).used_step(120)
            99.0
        """
        if math.isfinite(self.total_steps) and step >= self.total_steps >= 1:
            return self.curve_step(int(self.total_steps) - 1)
        return self.curve_step(step)

    def to_state(self) -> dict[str, float]:
        """The warp as a checkpoint stores it (``checkpoint state["warp"]``)."""
        return {"anchor": self.anchor, "at": self.at, "rate": self.rate, "total": self.curve_total,
                "steps_per_epoch": self.curve_steps_per_epoch}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Plan:
        """The plan of a checkpoint's schedule state (no ``warp`` key: the identity)."""
        warp = state.get("warp")
        plan = cls(steps_per_epoch=float(state["steps_per_epoch"]), total_steps=float(state["total_steps"]))
        if warp is None:
            return plan
        return replace(plan, anchor=int(warp["anchor"]), at=float(warp["at"]), rate=float(warp["rate"]),
                       curve_total=float(warp["total"]), curve_steps_per_epoch=float(warp["steps_per_epoch"]))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=1e-12))


def _joins_flat(curve: Any, v: float, old_total: float, new_total: float, spe: float) -> bool:
    """Whether both lengths put curve step ``v`` and the one before it on the same LR: no jump.

    This admits the flat phases of curves whose earlier phases are counted in fractions of
    training: a ``wsd`` preset (``unit="fraction"``) resumed in its stable phase, a
    ``warmup_cosine`` in its hold. Its warmup already ran under the old length; from ``v`` on,
    both plans hold the same LR, and the new plan decays at the new end.
    """
    if not (math.isfinite(old_total) and math.isfinite(new_total)) or v < 1:
        return False
    try:
        return all(curve.lr(k, old_total, spe, 1.0) == curve.lr(k, new_total, spe, 1.0) for k in (v - 1, v))
    except (ValueError, ZeroDivisionError, OverflowError):
        return False


def replan(curve: Any, plan: Plan, step: int, steps_per_epoch: float, total_steps: float) -> tuple[Plan, Plan | None]:
    """The plans for a fit whose steps per epoch or total became ``steps_per_epoch`` / ``total_steps`` at ``step``.

    Args:
        curve: The schedule (a :class:`~lr_plugins.schedules.Curve`: its ``unit`` and ``total_free_steps``).
        plan: The plan so far.
        step: ``s``, the real optimizer step the change takes effect at (no step >= s has run).

    Returns:
        ``(follow, cont)``: ``follow`` follows the new length (see the module doc); ``cont`` is
        the continue plan when following would change the LR of a step already planned
        (not seamless), else None.
    """
    old_total, old_spe = plan.curve_total, plan.curve_steps_per_epoch
    if total_steps <= step:  # no step is left to run: nothing to re-plan
        return plan, None
    if step == 0 and not plan.warped:  # nothing has run: the new length is simply the plan
        return Plan(steps_per_epoch=steps_per_epoch, total_steps=total_steps), None
    v = plan.curve_step(step)
    rate = plan.rate
    if curve.unit == "epoch" and steps_per_epoch != plan.steps_per_epoch and math.isfinite(steps_per_epoch):
        rate = rate * plan.steps_per_epoch / steps_per_epoch
    left = total_steps - step
    new_total = v + left * rate if math.isfinite(left) else math.inf
    if _same(new_total, old_total):
        new_total = old_total
    follow = Plan(steps_per_epoch=steps_per_epoch, total_steps=total_steps, anchor=step, at=v, rate=rate,
                  curve_total=new_total, curve_steps_per_epoch=old_spe)
    if new_total == old_total:
        return follow, None
    free = min(curve.total_free_steps(old_total, old_spe), curve.total_free_steps(new_total, old_spe))
    if v <= free or _joins_flat(curve, v, old_total, new_total, old_spe):
        return follow, None
    if step >= plan.total_steps:  # the old curve has ended: keep the LR its last step used
        return follow, replace(follow, at=plan.used_step(step), rate=0.0, curve_total=old_total)
    cont_rate = (old_total - v) / left if math.isfinite(left) else rate
    cont = replace(follow, rate=max(cont_rate, 0.0), curve_total=old_total)
    return follow, cont


def planned_curve_steps(curve: Any, epoch_steps: Sequence[int], max_steps: float = math.inf) -> list[tuple[float, float, float]]:
    """``(v(k), T_v, spe_v)`` of every optimizer step ``k`` of a fit whose epoch ``e`` has ``epoch_steps[e]`` steps.

    What the callback evaluates the curve with when the steps per epoch change from one epoch to
    the next (a ``GradientAccumulationScheduler``): at each epoch start the total is re-counted
    at that epoch's steps per epoch (capped at ``max_steps``) and the plan re-planned as during a
    fit (:func:`replan`; a change that is not seamless continues from the current LR).
    ``curve.lr(v, T_v, spe_v, peak)`` is then the LR of step ``k``.

    Example:
        >>> from lr_plugins import WarmupCosine
        >>> steps = planned_curve_steps(WarmupCosine(), [4, 4, 2, 2])  # accumulation 1 -> 2 at epoch 2
        >>> tuple(v for v, _, _ in steps)
        (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0)
        >>> _, total, per_epoch = steps.pop()
        >>> total, per_epoch  # the curve's own total (4 epochs of 4 steps) and steps per epoch
        (16.0, 4.0)
    """
    out: list[tuple[float, float, float]] = []
    plan: Plan | None = None
    done, epochs = 0, len(epoch_steps)
    for e, spe in enumerate(epoch_steps):
        total = min(float(done + spe * (epochs - e)), float(max_steps))
        if plan is None:
            plan = Plan(steps_per_epoch=float(spe), total_steps=total)
        elif spe != plan.steps_per_epoch or total != plan.total_steps:
            follow, cont = replan(curve, plan, done, float(spe), total)
            plan = follow if cont is None else cont
        end = int(min(done + spe, total))
        out.extend((plan.curve_step(k), plan.curve_total, plan.curve_steps_per_epoch) for k in range(done, end))
        done = end
        if done >= total:
            break
    return out
