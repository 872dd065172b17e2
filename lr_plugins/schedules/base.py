"""The common part of every schedule: arguments, linear warmup, step/epoch units.

A schedule is a closed-form function of the optimizer step. With ``t`` the time since the
schedule started, in ``unit``s (``t = step / steps_per_epoch`` for ``unit="epoch"``, ``t = step``
for ``unit="step"``, ``t = step / total_steps`` for ``unit="fraction"``):

    lr(t) = warmup_start_lr + (peak - warmup_start_lr) * t / warmup     for t < warmup
    lr(t) = body(t - warmup)                                            otherwise

where ``body`` is the family's formula (see the subclasses). Nothing here depends on the
previous LR, so any step can be evaluated on its own, which makes resume exact.

Every concrete curve registers itself in :data:`CURVES` under its public name (``SGDR``, ...)
by declaring ``class SGDRCurve(CyclicCurve, name="SGDR")``: lists of schedules (the callback
classes, tests, docs) derive from that one registry.

Limits, checked with one clear error each: ``step`` is an integer in ``[0, MAX_STEP)``;
``total_steps`` a whole number ``>= 0`` (``preview`` at most ``MAX_PREVIEW_STEPS``);
``steps_per_epoch`` a finite number ``> 0``; ``t`` at most ``MAX_TIME`` units; cycle lengths
(SGDR's ``cycle_length``, CyclicLR's ``step_size``) at least ``MIN_CYCLE`` units.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, TypedDict

import numpy as np

from lr_plugins._validation import check_bool, check_choice, check_real

__all__ = [
    "CURVES",
    "SharedArgs",
    "CommonArgs",
    "MomentumArgs",
    "Curve",
    "CyclicCurve",
    "MomentumCycling",
    "UNITS",
    "MAX_PREVIEW_STEPS",
    "MAX_STEP",
    "MAX_TIME",
    "MIN_CYCLE",
    "at_most",
    "snap",
    "check_step",
    "check_total_steps",
    "check_steps_per_epoch",
]

UNITS = ("epoch", "step", "fraction")
#: ``preview`` refuses more steps than this (10 million: an 80 MB float64 array).
MAX_PREVIEW_STEPS = 10**7
#: Steps are integers below 2**53, where every integer is exact as a float.
MAX_STEP = 2**53
#: The largest time, in units, a curve is evaluated at (``step / steps_per_epoch``).
MAX_TIME = 1e15
#: The shortest cycle length (SGDR's ``cycle_length``, CyclicLR's ``step_size``), in units.
MIN_CYCLE = 1e-6
_EPS = 1e-9
#: Iterations the float-noise corrections of a closed-form cycle index may take.
_FIXUPS = 4

#: Every concrete curve by public name, in definition order (filled by ``Curve.__init_subclass__``).
CURVES: dict[str, type[Curve]] = {}


class SharedArgs(TypedDict, total=False):
    """The keyword arguments every schedule takes but ``min_lr`` (see :class:`Curve`).

    A family's ``__init__`` takes them as ``**common: Unpack[CommonArgs]``, so type checkers
    report a misspelled shared argument (``SGDR(cycle_length=2, max_Lr=0.1)``) like a
    misspelled own one.
    """

    max_lr: float | None
    warmup: float
    warmup_start_lr: float
    unit: str


class CommonArgs(SharedArgs, total=False):
    """:class:`SharedArgs` and ``min_lr`` (CyclicLR types its ``min_lr`` on its own: it may be None)."""

    min_lr: float


class MomentumArgs(TypedDict, total=False):
    """The momentum arguments of CyclicLR and OneCycle (see :class:`MomentumCycling`)."""

    cycle_momentum: bool
    base_momentum: float
    max_momentum: float


def _whole(name: str, value: Any, allowed: str, high: float) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, float) and value.is_integer():
        ok = True
    if not ok:
        raise TypeError(f"{name}={value!r} is not allowed: {name} must be {allowed}.")
    if not 0 <= value < high:
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}.")
    return int(value)


def check_step(step: Any) -> int:
    """Return ``step`` as an ``int`` after checking that it is an optimizer step in ``[0, MAX_STEP)``.

    Example:
        >>> check_step(3)
        3
    """
    return _whole("step", step, "an integer >= 0 (the 0-based optimizer step) and < 2**53", MAX_STEP)


def check_total_steps(total_steps: Any, *, optional: bool = False, maximum: int = MAX_STEP) -> int | None:
    """Return ``total_steps`` as an ``int`` after checking it is a whole number in ``[0, maximum]``.

    Example:
        >>> check_total_steps(100)
        100
    """
    if total_steps is None and optional:
        return None
    allowed = f"a whole number of optimizer steps in [0, {maximum}]" + (" or None" if optional else "")
    return _whole("total_steps", total_steps, allowed, maximum + 1)


def check_steps_per_epoch(steps_per_epoch: Any) -> float:
    """Return ``steps_per_epoch`` as a float after checking that it is finite and ``> 0``.

    Example:
        >>> check_steps_per_epoch(10)
        10.0
    """
    value = check_real("steps_per_epoch", steps_per_epoch, low=0.0, low_open=True)
    assert value is not None
    return value


def snap(x: float) -> float:
    """Round ``x`` to the nearest integer when it is within float noise of it.

    Cycle boundaries such as ``1.5 epochs * 10 steps/epoch`` are computed in floating point;
    snapping keeps ``14.999999999999998`` from landing on the wrong side of step 15.
    """
    r = round(x)
    return float(r) if abs(x - r) <= _EPS * max(1.0, abs(x)) else x


def at_most(a: float, b: float) -> bool:
    """``a <= b`` up to float noise (relative 1e-9): cycle boundaries vs. times on the step grid."""
    return a <= b + _EPS * max(1.0, abs(b))


class Curve:
    """Base class of the pure schedules: common arguments, warmup and units.

    Args:
        max_lr: Peak LR. ``None``: each param group's configured LR (``lr_at`` then uses 1.0).
        min_lr: Floor LR (group 0; other groups are scaled by their LR ratio).
        warmup: Length of the linear warmup, in ``unit``s (may be fractional).
        warmup_start_lr: LR at the start of the warmup.
        unit: What lengths and ``t`` are counted in: ``"epoch"`` (``t = step / steps_per_epoch``),
            ``"step"`` (``t = step``) or ``"fraction"`` of the whole training
            (``t = step / total_steps``; needs the total, and lengths must be <= 1).

    Subclasses register under a public name with ``class XCurve(Curve, name="X")``.
    """

    #: Whether the schedule cannot run without knowing the total number of steps
    #: (also true of every schedule with ``unit="fraction"``).
    needs_total: bool = False

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            if name in CURVES:
                raise TypeError(f"two curves register the name {name!r}: {CURVES[name].__qualname__} and {cls.__qualname__}")
            CURVES[name] = cls

    def __init__(
        self,
        *,
        max_lr: float | None = None,
        min_lr: float = 0.0,
        warmup: float = 0,
        warmup_start_lr: float = 0.0,
        unit: str = "epoch",
    ) -> None:
        self.max_lr = check_real("max_lr", max_lr, low=0.0, low_open=True, optional=True)
        self.min_lr = check_real("min_lr", min_lr, low=0.0)
        self.warmup = check_real("warmup", warmup, low=0.0)
        self.warmup_start_lr = check_real("warmup_start_lr", warmup_start_lr, low=0.0)
        self.unit = check_choice("unit", unit, UNITS)
        self.check_length("warmup", self.warmup)
        if self.unit == "fraction":
            self.needs_total = True
        if self.max_lr is not None:
            self.check_peak(self.max_lr)
        super().__init__()

    # ------------------------------------------------------------------ checks
    def check_length(self, name: str, value: float | None) -> None:
        """Raise ``ValueError`` if a length is above 1 with ``unit="fraction"`` (more than all of training)."""
        if self.unit == "fraction" and value is not None and value > 1:
            raise ValueError(
                f"{name}={value!r} is not allowed with unit='fraction': lengths are fractions of the whole "
                f"training, so {name} must be <= 1 (set unit='epoch' or unit='step' to count in epochs or steps)."
            )

    def check_peak(self, peak: float, what: str = "max_lr") -> None:
        """Raise ``ValueError`` unless the floors fit under ``peak`` (the LR of group 0)."""
        for name in ("min_lr", "warmup_start_lr"):
            value = getattr(self, name)
            if value is not None and value > peak:
                raise ValueError(
                    f"{name}={value!r} is not allowed: it must be <= the peak LR ({what}={peak!r})."
                )

    def set_peak(self, lr: float) -> None:
        """Make ``lr`` the peak (``max_lr``): the one way to hand a schedule a new peak.

        Validates as the constructor does (``max_lr`` a finite number > 0, every floor under it,
        a family's own rules) and changes nothing when that fails. The LR finder calls it with
        its pick before training starts.

        Example:
            >>> from lr_plugins import WarmupCosine
            >>> s = WarmupCosine(min_lr=0.01)
            >>> s.set_peak(0.3)
            >>> s.max_lr
            0.3
        """
        peak = check_real("max_lr", lr, low=0.0, low_open=True)
        assert peak is not None
        self.check_peak(peak)
        self.max_lr = peak

    def needs_total_because(self) -> str:
        """Why the schedule needs the length of training (a phrase for error messages)."""
        return "unit='fraction' counts in fractions of it" if self.unit == "fraction" else "it anneals to its end"

    def check_total(self, total_steps: float, steps_per_epoch: float) -> None:
        """Raise ``ValueError`` if the schedule cannot run for ``total_steps`` optimizer steps."""
        if self.needs_total and not math.isfinite(total_steps):
            why = self.needs_total_because()
            raise ValueError(
                f"{type(self).__name__} needs the total number of optimizer steps ({why}), but training is "
                "infinite (max_epochs=-1 and max_steps=-1): set trainer max_epochs or max_steps, "
                "or use a schedule that needs no end (SGDR, CyclicLR, StepDecay, ...) with unit='epoch' or 'step'."
            )
        if self.unit == "fraction" and total_steps < 1:
            raise ValueError(
                f"total_steps={total_steps!r} is not allowed with unit='fraction': lengths are fractions of "
                "training, which needs at least 1 optimizer step."
            )
        spu = self.steps_per_unit(steps_per_epoch, total_steps)
        if math.isfinite(total_steps) and self.warmup * spu > total_steps:
            raise ValueError(
                f"warmup={self.warmup!r} ({self.unit}s) is not allowed: it is longer than training "
                f"({total_steps:g} optimizer steps = {total_steps / spu:g} {self.unit}s)."
            )

    def total_free_steps(self, total_steps: float, steps_per_epoch: float) -> float:
        """How many leading optimizer steps have an LR that does not depend on ``total_steps``.

        The length-change contract: a fit resumed at optimizer step ``s`` with another length of
        training continues seamlessly (the rest of the curve follows the new length) when
        ``s <= min(total_free_steps(old), total_free_steps(new))``: every step run so far had the
        same LR under both lengths. Otherwise the callback refuses before any step, or re-plans
        the rest of the curve when asked (``on_length_change="continue"``).

        ``inf`` for a curve that never depends on the length (constant, decays and SGDR counted
        in epochs or steps); ``0`` for one that depends on it from the first step
        (``unit="fraction"``, OneCycle, SGDR with ``cycle_length=None``). A family whose curve
        depends on the length only after some point (WarmupCosine: after warmup and hold)
        overrides this.

        Example:
            >>> from lr_plugins import StepDecay, WarmupCosine
            >>> StepDecay(step_size=2, unit="step").total_free_steps(100, 10)
            inf
            >>> WarmupCosine(warmup=2, hold=1).total_free_steps(100, steps_per_epoch=10)
            30.0
        """
        if self.unit == "fraction" or self.needs_total:
            return 0.0
        return math.inf

    # ------------------------------------------------------------------ config
    def config(self) -> dict[str, Any]:
        """The constructor arguments as a dict: what a checkpoint stores to detect a changed schedule."""
        names = []
        for cls in type(self).__mro__:
            if "__init__" in vars(cls):
                names += [p for p in inspect.signature(vars(cls)["__init__"]).parameters if p != "self"]
        return {"class": type(self).__name__, **{n: getattr(self, n) for n in dict.fromkeys(names) if hasattr(self, n)}}

    def __repr__(self) -> str:
        cfg = self.config()
        cls = cfg.pop("class")
        return f"{cls}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"

    # ------------------------------------------------------------------ math
    def steps_per_unit(self, steps_per_epoch: float, total_steps: float = math.inf) -> float:
        """Optimizer steps in one ``unit``: ``steps_per_epoch``, 1, or ``total_steps`` (``"fraction"``)."""
        if self.unit == "epoch":
            return float(steps_per_epoch)
        return float(total_steps) if self.unit == "fraction" else 1.0

    def lr(self, step: float, total_steps: float, steps_per_epoch: float, peak: float) -> float:
        """The LR of optimizer ``step`` with peak ``peak`` (the hot path of the callback; no checks)."""
        unit = self.unit
        spu = float(steps_per_epoch) if unit == "epoch" else 1.0 if unit == "step" else float(total_steps)
        t = step / spu
        if t < self.warmup:
            return self.warmup_start_lr + (peak - self.warmup_start_lr) * t / self.warmup
        return self.body(t - self.warmup, total_steps / spu - self.warmup, peak, spu)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        """The family's formula after the warmup; ``t`` and ``total`` in units."""
        raise NotImplementedError

    @property
    def cycles_momentum(self) -> bool:
        """Whether the schedule cycles momentum inversely to the LR (see :class:`MomentumCycling`)."""
        return False

    def momentum(self, step: float, total_steps: float, steps_per_epoch: float) -> float | None:
        """The momentum of optimizer ``step``, or ``None`` when the schedule leaves it alone."""
        return None

    # ------------------------------------------------------------------ public, no Trainer
    def _checked(
        self, total_steps: Any, steps_per_epoch: Any, *, last_step: int | None = None, maximum: int = MAX_STEP
    ) -> tuple[float, float]:
        """Validate the public arguments; return ``(total, steps_per_epoch)`` (total ``inf`` when None)."""
        total = check_total_steps(total_steps, optional=True, maximum=maximum)
        spe = check_steps_per_epoch(steps_per_epoch)
        if total is None and self.needs_total:
            raise ValueError(
                f"total_steps=None is not allowed: {type(self).__name__} needs total_steps, the length of training "
                f"in optimizer steps ({self.needs_total_because()})."
            )
        ftotal = math.inf if total is None else float(total)
        self.check_total(ftotal, spe)
        last = total if last_step is None else last_step
        if last is not None and math.isfinite(last):
            t = last / self.steps_per_unit(spe, ftotal)
            if t > MAX_TIME:
                raise ValueError(
                    f"steps_per_epoch={steps_per_epoch!r} is not allowed here: step {last} would be "
                    f"t={t:g} {self.unit}s, above the {MAX_TIME:g} units a schedule is evaluated at."
                )
        return ftotal, spe

    def lr_at(self, step: int, total_steps: int | None = None, steps_per_epoch: float = 1.0) -> float:
        """The LR that optimizer ``step`` (0-based) uses, with a peak of 1.0 when ``max_lr`` is None.

        ``step`` must be an integer >= 0, ``total_steps`` a whole number >= 0 (or None for a
        schedule that needs no end), ``steps_per_epoch`` a finite number > 0.

        Example:
            >>> from lr_plugins import WarmupCosine
            >>> WarmupCosine(max_lr=0.1, unit="step").lr_at(50, total_steps=100)
            0.05
        """
        step = check_step(step)
        total, spe = self._checked(total_steps, steps_per_epoch, last_step=step)
        return self.lr(step, total, spe, 1.0 if self.max_lr is None else self.max_lr)

    def preview(self, total_steps: int, steps_per_epoch: float = 1.0) -> np.ndarray:
        """``lr_at`` for every step ``0 .. total_steps-1``, as a float64 array.

        ``total_steps`` is at most ``MAX_PREVIEW_STEPS`` (10**7): plot a longer run from a
        coarser unit, or evaluate ``lr_at`` at the steps you need.

        Example:
            >>> from lr_plugins import StepDecay
            >>> StepDecay(max_lr=1.0, step_size=2, unit="step").preview(5).tolist()
            [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
        """
        if total_steps is None:
            raise TypeError("total_steps=None is not allowed: preview needs the number of steps to draw.")
        total, spe = self._checked(total_steps, steps_per_epoch, maximum=MAX_PREVIEW_STEPS)
        peak = 1.0 if self.max_lr is None else self.max_lr
        return np.array([self.lr(s, total, spe, peak) for s in range(int(total))], dtype=np.float64)

    def preview_momentum(self, total_steps: int, steps_per_epoch: float = 1.0) -> np.ndarray | None:
        """The momentum of every step, or ``None`` when the schedule does not cycle it."""
        if total_steps is None:
            raise TypeError("total_steps=None is not allowed: preview needs the number of steps to draw.")
        total, spe = self._checked(total_steps, steps_per_epoch, maximum=MAX_PREVIEW_STEPS)
        if not self.cycles_momentum:
            return None
        return np.array([self.momentum(s, total, spe) for s in range(int(total))])


class MomentumCycling(Curve):
    """Base of the curves that cycle momentum, CyclicLR and OneCycle (arguments as in torch).

    Momentum is ``max_momentum`` during the warmup, then ``momentum_body`` (the subclass's).

    Args:
        cycle_momentum: Whether to cycle momentum (SGD ``momentum`` or Adam's ``beta1``)
            inversely to the LR between ``base_momentum`` and ``max_momentum``.
        base_momentum: Momentum at the LR peak.
        max_momentum: Momentum at the LR trough.
    """

    def __init__(
        self, *, cycle_momentum: bool = True, base_momentum: float = 0.85, max_momentum: float = 0.95, **common: Any
    ) -> None:
        self.cycle_momentum = check_bool("cycle_momentum", cycle_momentum)
        self.base_momentum = check_real("base_momentum", base_momentum, low=0.0, high=1.0, high_open=True)
        self.max_momentum = check_real("max_momentum", max_momentum, low=0.0, high=1.0, high_open=True)
        if self.base_momentum > self.max_momentum:
            raise ValueError(
                f"base_momentum={base_momentum!r} is not allowed: it must be <= max_momentum={max_momentum!r}."
            )
        super().__init__(**common)

    @property
    def cycles_momentum(self) -> bool:
        return self.cycle_momentum

    def momentum(self, step: float, total_steps: float, steps_per_epoch: float) -> float | None:
        if not self.cycle_momentum:
            return None
        spu = self.steps_per_unit(steps_per_epoch, total_steps)
        t = step / spu
        if t < self.warmup:
            return self.max_momentum
        return self.momentum_body(t - self.warmup, total_steps / spu - self.warmup, spu)

    def momentum_body(self, t: float, total: float, steps_per_unit: float) -> float:
        """The momentum after the warmup."""
        raise NotImplementedError


class CyclicCurve(Curve):
    """A curve made of cycles: adds ``cycle_at`` and ``cycle_ends`` (used by snapshot ensembling).

    Subclasses give ``cycle_index(t, total)`` (the cycle that time ``t`` after warmup belongs to,
    0-based, in closed form) and ``cycle_boundary(k, total)`` (the time after warmup where cycle
    ``k`` ends); ``total`` is the training after warmup in units (``inf`` when unknown), for
    cycles that are placed by the length of training.
    """

    def cycle_index(self, t: float, total: float) -> int:
        raise NotImplementedError

    def cycle_boundary(self, k: int, total: float) -> float:
        raise NotImplementedError

    def cycle_at(self, step: int, steps_per_epoch: float = 1.0, total_steps: int | None = None) -> int:
        """The cycle (0-based) that optimizer ``step`` belongs to; -1 during warmup.

        Step ``s`` ends a cycle exactly when ``cycle_at(s + 1) > cycle_at(s)``. ``total_steps``
        is needed only where the cycles depend on it (``unit="fraction"``, SGDR's
        ``cycle_length=None``).

        Examples:
            >>> from lr_plugins import SGDR
            >>> [SGDR(cycle_length=2, unit="step").cycle_at(s) for s in range(5)]
            [0, 0, 1, 1, 2]
        """
        step = check_step(step)
        total, spe = self._checked(total_steps, steps_per_epoch, last_step=step)
        return self.cycle(step, total, spe)

    def cycle(self, step: float, total_steps: float, steps_per_epoch: float) -> int:
        """``cycle_at`` without checks, for any curve step (the hot path; ``total_steps`` ``inf`` when unknown).

        A re-planned fit (:mod:`lr_plugins.length_change`) evaluates the curve at a fractional
        curve step ``v(k)``; its cycles are those of the LR it applies, ``cycle(v(k), T_v, spe_v)``.

        Example:
            >>> from lr_plugins import SGDR
            >>> SGDR(cycle_length=2, unit="step").cycle(3.5, float("inf"), 1.0)
            1
        """
        spu = self.steps_per_unit(steps_per_epoch, total_steps)
        return self._cycle_of_step(step, spu, total_steps / spu - self.warmup)

    def _cycle_of_step(self, step: float, spu: float, total: float) -> int:
        t = step / spu - self.warmup
        return -1 if t < 0 else self.cycle_index(t, total)

    def cycle_ends(self, total_steps: int, steps_per_epoch: float = 1.0) -> list[int]:
        """The optimizer steps (0-based) that end a cycle: the last step that uses cycle k's LR.

        A snapshot taken right after such a step holds the weights at the cycle's LR minimum.
        Cycles too short to contain a step are skipped, so the work is bounded by the number of
        steps as well as by the number of cycles.

        Example:
            >>> from lr_plugins import SGDR
            >>> SGDR(max_lr=0.1, cycle_length=2, cycle_mult=2).cycle_ends(70, steps_per_epoch=10)
            [19, 59]
        """
        if total_steps is None:
            raise TypeError("total_steps=None is not allowed: cycle_ends needs the number of steps of training.")
        total, spe = self._checked(total_steps, steps_per_epoch)
        spu = self.steps_per_unit(spe, total)
        after = total / spu - self.warmup  # the training after warmup, in units
        ends: list[int] = []
        k = 0
        while True:
            b = snap((self.warmup + self.cycle_boundary(k, after)) * spu)
            if b > total + 1:
                break
            # The last step still in cycle k, searched near the boundary (float-noise proof).
            s = math.floor(b) + 1
            for _ in range(_FIXUPS):
                if s < 0 or self._cycle_of_step(s, spu, after) <= k:
                    break
                s -= 1
            nxt = self._cycle_of_step(s + 1, spu, after)
            if 0 <= s < total and self._cycle_of_step(s, spu, after) == k < nxt:
                ends.append(s)
            k = max(k + 1, nxt)  # the cycles between hold no step: none of them ends on one
        return ends
