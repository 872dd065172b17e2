"""The common part of every schedule: arguments, linear warmup, step/epoch units.

A schedule is a closed-form function of the optimizer step. With ``t`` the time since the
schedule started, in ``unit``s (``t = step / steps_per_epoch`` for ``unit="epoch"``):

    lr(t) = warmup_start_lr + (peak - warmup_start_lr) * t / warmup     for t < warmup
    lr(t) = body(t - warmup)                                            otherwise

where ``body`` is the family's formula (see the subclasses). Nothing here depends on the
previous LR, so any step can be evaluated on its own, which makes resume exact.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from lr_plugins._validation import check_bool, check_choice, check_real

__all__ = ["Curve", "CyclicCurve", "MomentumCycling", "UNITS", "at_most", "snap"]

UNITS = ("epoch", "step")
_EPS = 1e-9


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
        unit: ``"epoch"`` or ``"step"``: what the lengths and ``t`` are counted in.
    """

    #: Whether the schedule cannot run without knowing the total number of steps.
    needs_total: bool = False
    #: Whether the schedule cycles momentum inversely to the LR.
    cycles_momentum: bool = False

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
        if self.max_lr is not None:
            self.check_peak(self.max_lr)
        super().__init__()

    # ------------------------------------------------------------------ checks
    def check_peak(self, peak: float, what: str = "max_lr") -> None:
        """Raise ``ValueError`` unless the floors fit under ``peak`` (the LR of group 0)."""
        for name in ("min_lr", "warmup_start_lr"):
            value = getattr(self, name)
            if value > peak:
                raise ValueError(
                    f"{name}={value!r} is not allowed: it must be <= the peak LR ({what}={peak!r})."
                )

    def set_peak(self, lr: float) -> None:
        """Make ``lr`` the peak (``max_lr``); ``ValueError`` and nothing changed if the floors do not fit.

        (Minimal version for the LR finder's hand-off; the schedules branch owns the full one.)
        """
        lr = check_real("lr", lr, low=0.0, low_open=True)
        self.check_peak(lr)
        self.max_lr = lr

    def check_total(self, total_steps: float, steps_per_epoch: float) -> None:
        """Raise ``ValueError`` if the schedule cannot run for ``total_steps`` optimizer steps."""
        if self.needs_total and not math.isfinite(total_steps):
            raise ValueError(
                f"{type(self).__name__} needs the total number of optimizer steps, but training is "
                "infinite (max_epochs=-1 and max_steps=-1): set trainer max_epochs or max_steps, "
                "or use a schedule that needs no end (SGDR, CyclicLR, StepDecay, ...)."
            )
        if math.isfinite(total_steps) and self.warmup * self.steps_per_unit(steps_per_epoch) > total_steps:
            raise ValueError(
                f"warmup={self.warmup!r} ({self.unit}s) is not allowed: it is longer than training "
                f"({total_steps} optimizer steps = {total_steps / self.steps_per_unit(steps_per_epoch):g} "
                f"{self.unit}s)."
            )

    # ------------------------------------------------------------------ config
    def config(self) -> dict[str, Any]:
        """The constructor arguments as a dict: what a checkpoint stores to detect a changed schedule."""
        names = []
        for cls in type(self).__mro__:
            if "__init__" in vars(cls):
                names += [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        return {"class": type(self).__name__, **{n: getattr(self, n) for n in dict.fromkeys(names) if hasattr(self, n)}}

    def __repr__(self) -> str:
        cfg = self.config()
        cls = cfg.pop("class")
        return f"{cls}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"

    # ------------------------------------------------------------------ math
    def steps_per_unit(self, steps_per_epoch: float) -> float:
        """Optimizer steps in one ``unit``."""
        return float(steps_per_epoch) if self.unit == "epoch" else 1.0

    def lr(self, step: int, total_steps: float, steps_per_epoch: float, peak: float) -> float:
        """The LR of optimizer ``step`` with peak ``peak`` (the hot path of the callback)."""
        spu = float(steps_per_epoch) if self.unit == "epoch" else 1.0
        t = step / spu
        if t < self.warmup:
            return self.warmup_start_lr + (peak - self.warmup_start_lr) * t / self.warmup
        return self.body(t - self.warmup, total_steps / spu - self.warmup, peak, spu)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        """The family's formula after the warmup; ``t`` and ``total`` in units."""
        raise NotImplementedError

    def momentum(self, step: int, total_steps: float, steps_per_epoch: float) -> float | None:
        """The momentum of optimizer ``step``, or ``None`` when the schedule leaves it alone."""
        if not self.cycles_momentum:
            return None
        spu = float(steps_per_epoch) if self.unit == "epoch" else 1.0
        t = step / spu
        if t < self.warmup:
            return self.max_momentum
        return self.momentum_body(t - self.warmup, total_steps / spu - self.warmup, spu)

    def momentum_body(self, t: float, total: float, steps_per_unit: float) -> float:
        """The momentum after the warmup (schedules that cycle momentum override this)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ public, no Trainer
    def _total(self, total_steps: float | None) -> float:
        if total_steps is None:
            if self.needs_total:
                raise ValueError(f"{type(self).__name__}.lr_at needs total_steps (the length of training in steps).")
            return math.inf
        return float(total_steps)

    def lr_at(self, step: int, total_steps: int | None = None, steps_per_epoch: float = 1.0) -> float:
        """The LR that optimizer ``step`` (0-based) uses, with a peak of 1.0 when ``max_lr`` is None.

        Example:
            >>> from lr_plugins import WarmupCosine
            >>> WarmupCosine(max_lr=0.1, unit="step").lr_at(50, total_steps=100)
            0.05
        """
        total = self._total(total_steps)
        self.check_total(total, steps_per_epoch)
        return self.lr(step, total, steps_per_epoch, 1.0 if self.max_lr is None else self.max_lr)

    def preview(self, total_steps: int, steps_per_epoch: float = 1.0) -> np.ndarray:
        """``lr_at`` for every step ``0 .. total_steps-1``, as a float64 array.

        Example:
            >>> from lr_plugins import StepDecay
            >>> StepDecay(max_lr=1.0, step_size=2, unit="step").preview(5).tolist()
            [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
        """
        total = float(total_steps)
        self.check_total(total, steps_per_epoch)
        peak = 1.0 if self.max_lr is None else self.max_lr
        return np.array([self.lr(s, total, steps_per_epoch, peak) for s in range(int(total_steps))], dtype=np.float64)

    def preview_momentum(self, total_steps: int, steps_per_epoch: float = 1.0) -> np.ndarray | None:
        """The momentum of every step, or ``None`` when the schedule does not cycle it."""
        if not self.cycles_momentum:
            return None
        total = float(total_steps)
        return np.array([self.momentum(s, total, steps_per_epoch) for s in range(int(total_steps))])


class MomentumCycling:
    """Mixin with the momentum arguments shared by CyclicLR and OneCycle (as in torch).

    Args:
        cycle_momentum: Whether to cycle momentum (SGD ``momentum`` or Adam's ``beta1``)
            inversely to the LR between ``base_momentum`` and ``max_momentum``.
        base_momentum: Momentum at the LR peak.
        max_momentum: Momentum at the LR trough.
    """

    def __init__(
        self, *, cycle_momentum: bool = True, base_momentum: float = 0.85, max_momentum: float = 0.95, **common
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
    def cycles_momentum(self) -> bool:  # type: ignore[override]
        return self.cycle_momentum


class CyclicCurve(Curve):
    """A curve made of cycles: adds ``cycle_ends`` (used by snapshot ensembling).

    Subclasses give ``cycle_index(t)`` (the cycle that time ``t`` after warmup belongs to,
    0-based) and ``cycle_boundary(k)`` (the time after warmup where cycle ``k`` ends).
    """

    def cycle_index(self, t: float) -> int:
        raise NotImplementedError

    def cycle_boundary(self, k: int) -> float:
        raise NotImplementedError

    def cycle_at(self, step: int, steps_per_epoch: float = 1.0) -> int:
        """The cycle (0-based) that optimizer ``step`` belongs to; -1 during warmup.

        Step ``s`` ends a cycle exactly when ``cycle_at(s + 1) > cycle_at(s)``.
        """
        return self._cycle_of_step(step, self.steps_per_unit(steps_per_epoch))

    def _cycle_of_step(self, step: int, spu: float) -> int:
        t = step / spu - self.warmup
        return -1 if t < 0 else self.cycle_index(t)

    def cycle_ends(self, total_steps: int, steps_per_epoch: float = 1.0) -> list[int]:
        """The optimizer steps (0-based) that end a cycle: the last step that uses cycle k's LR.

        A snapshot taken right after such a step holds the weights at the cycle's LR minimum.

        Example:
            >>> from lr_plugins import SGDR
            >>> SGDR(max_lr=0.1, cycle_length=2, cycle_mult=2).cycle_ends(70, steps_per_epoch=10)
            [19, 59]
        """
        spu = self.steps_per_unit(steps_per_epoch)
        ends: list[int] = []
        k = 0
        while True:
            b = snap((self.warmup + self.cycle_boundary(k)) * spu)
            if b > total_steps + 1:
                break
            guess = math.floor(b)
            # The last step still in cycle k, searched near the boundary (float-noise proof).
            s = guess + 1
            while s >= 0 and self._cycle_of_step(s, spu) > k:
                s -= 1
            if 0 <= s < total_steps and self._cycle_of_step(s, spu) == k < self._cycle_of_step(s + 1, spu):
                ends.append(s)
            k += 1
        return ends
