"""Cyclical LR (Smith 2017) and the 1cycle policy (Smith & Topin 2018), as in torch."""

from __future__ import annotations

import math

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_bool, check_choice, check_real
from lr_plugins.schedules.base import (
    _FIXUPS,
    MIN_CYCLE,
    CommonArgs,
    Curve,
    CyclicCurve,
    MomentumArgs,
    MomentumCycling,
    SharedArgs,
)

__all__ = ["CyclicLRCurve", "OneCycleCurve", "CyclicLRArgs", "OneCycleArgs", "CLR_MODES", "ANNEAL", "SMITH_FLOOR"]

CLR_MODES = ("triangular", "triangular2", "exp_range")
ANNEAL = ("cos", "linear")
#: CyclicLR's floor as a fraction of its peak when ``min_lr`` is None: Smith (2017) sets the
#: lower bound to 1/3 or 1/4 of the upper one; 1/4 is the wider cycle.
SMITH_FLOOR = 0.25


class CyclicLRArgs(SharedArgs, MomentumArgs, total=False):
    """CyclicLR's shared keyword arguments (its ``min_lr``, which may be None, is its own)."""


class OneCycleArgs(CommonArgs, MomentumArgs, total=False):
    """OneCycle's shared keyword arguments."""


class CyclicLRCurve(MomentumCycling, CyclicCurve, name="CyclicLR"):
    r"""Cyclical learning rate (Smith, 2017): a triangle wave between ``min_lr`` and ``max_lr``.

    With half cycle ``s = step_size``, ``cycle = floor(1 + t / 2s)``, ``x = 1 + t / 2s - cycle``
    and ``f = 2x`` for ``x <= 1/2`` else ``2(1 - x)``:

    .. math:: \eta(t) = \eta_{min} + (\eta_{max} - \eta_{min}) \, f \, scale

    where ``scale`` is 1 (``triangular``), ``1 / 2**(cycle - 1)`` (``triangular2``) or
    ``gamma**t`` (``exp_range``). ``min_lr=None`` puts the floor at ``SMITH_FLOOR = 1/4`` of the peak
    (Smith's 1/3 to 1/4 rule), so it follows the peak wherever it comes from (``max_lr``, the
    optimizer's LR, or ``set_peak``). Momentum moves the opposite way:
    ``max_momentum - (max_momentum - base_momentum) f scale``. With ``unit="step"`` the values
    equal ``torch.optim.lr_scheduler.CyclicLR(step_size_up=step_size)``.

    Args:
        step_size: Half a cycle, in ``unit``s (>= ``MIN_CYCLE`` = 1e-6; <= 1 with ``unit="fraction"``).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: Decay per ``unit`` of ``exp_range`` (0 < gamma <= 1).
        cycle_momentum, base_momentum, max_momentum: see ``MomentumCycling``.
        min_lr: The lower bound (group 0), or ``None`` for ``SMITH_FLOOR * peak``.
        **common: ``max_lr``, ``warmup``, ``warmup_start_lr``, ``unit``.

    Example:
        >>> from lr_plugins import CyclicLR
        >>> s = CyclicLR(max_lr=1.0, min_lr=0.2, step_size=2, unit="step")
        >>> [round(x, 6) for x in s.preview(5).tolist()]
        [0.2, 0.6, 1.0, 0.6, 0.2]
        >>> CyclicLR(max_lr=0.4, min_lr=None, step_size=2, unit="step").lr_at(0)
        0.1
    """


    def __init__(
        self,
        *,
        step_size: float,
        mode: str = "triangular",
        gamma: float = 1.0,
        min_lr: float | None = 0.0,
        **common: Unpack[CyclicLRArgs],
    ) -> None:
        self.step_size = check_real("step_size", step_size, low=MIN_CYCLE)
        self.mode = check_choice("mode", mode, CLR_MODES)
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)
        super().__init__(min_lr=0.0 if min_lr is None else min_lr, **common)
        # None (Smith's floor, following the peak) is CyclicLR's own: Curve's min_lr is a number.
        self.min_lr = None if min_lr is None else self.min_lr  # type: ignore[assignment]
        self.check_length("step_size", self.step_size)

    def floor(self, peak: float) -> float:
        """The lower bound for ``peak``: ``min_lr``, or ``SMITH_FLOOR * peak`` when it is None."""
        return SMITH_FLOOR * peak if self.min_lr is None else self.min_lr

    def set_peak(self, lr: float) -> None:
        """Make ``lr`` the peak and move the floor with it.

        The floor keeps its ratio to the peak when both are known (``min_lr * lr / max_lr``);
        with ``max_lr=None`` it becomes ``SMITH_FLOOR * lr``; ``min_lr=None`` already follows.
        Nothing changes when ``lr`` is refused.

        Example:
            >>> from lr_plugins import CyclicLR
            >>> s = CyclicLR(max_lr=0.1, min_lr=0.02, step_size=2)
            >>> s.set_peak(0.5)
            >>> (s.max_lr, s.min_lr)
            (0.5, 0.1)
        """
        peak = check_real("max_lr", lr, low=0.0, low_open=True)
        assert peak is not None
        old = self.min_lr
        if old is not None:
            self.min_lr = old * (peak / self.max_lr) if self.max_lr is not None else SMITH_FLOOR * peak
        try:
            super().set_peak(peak)
        except ValueError:
            self.min_lr = old
            raise

    def _wave(self, t: float) -> tuple[float, float]:
        """(triangle height in [0, 1], amplitude scale) at time ``t``; torch's order of operations."""
        total_size = 2.0 * self.step_size
        cycle = math.floor(1 + t / total_size)
        x = 1.0 + t / total_size - cycle
        factor = x / 0.5 if x <= 0.5 else (x - 1) / (0.5 - 1)
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 1 / (2.0 ** (cycle - 1))
        else:
            scale = self.gamma**t
        return factor, scale

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        factor, scale = self._wave(t)
        lo = SMITH_FLOOR * peak if self.min_lr is None else self.min_lr
        return lo + (peak - lo) * factor * scale

    def momentum_body(self, t: float, total: float, steps_per_unit: float) -> float:
        factor, scale = self._wave(t)
        return self.max_momentum - (self.max_momentum - self.base_momentum) * factor * scale

    # A cycle ends at an LR trough, t = 2 s (k + 1); the trough step itself belongs to the cycle.
    def cycle_boundary(self, k: int, total: float) -> float:
        return 2.0 * self.step_size * (k + 1)

    def cycle_index(self, t: float, total: float) -> int:
        k = max(0, math.ceil(t / (2.0 * self.step_size)) - 1)
        for _ in range(_FIXUPS):  # float noise at a trough: the trough belongs to the cycle it ends
            if k <= 0 or t > 2.0 * self.step_size * k * (1 + 1e-12):
                break
            k -= 1
        return k


class OneCycleCurve(MomentumCycling, Curve, name="OneCycle"):
    r"""The 1cycle policy (Smith & Topin, 2018), with the same values as torch's ``OneCycleLR``.

    Over ``N`` optimizer steps the LR rises from ``max_lr / div_factor`` to ``max_lr`` by step
    ``pct_start N - 1``, then anneals to ``max_lr / (div_factor final_div_factor)`` at step
    ``N - 1`` (``three_phase``: back to the initial LR by ``2 pct_start N - 2``, then to the
    final LR). Each phase interpolates with ``anneal``: ``cos`` gives
    ``end + (start - end)(1 + cos(pi p)) / 2``, ``linear`` gives ``start + (end - start) p``.
    Momentum moves the opposite way between ``max_momentum`` and ``base_momentum``. A
    ``min_lr > 0`` replaces the final LR. After step ``N - 1`` the LR holds the final value.

    Trainings too short for every phase to get a step (``pct_start N < 1``, e.g. a 1-step
    ``fast_dev_run``) follow torch's formula with the progress clamped to [0, 1]: phases that
    hold no step are skipped and the LR stays between the initial, peak and final LRs.

    Args:
        pct_start: Fraction of training spent rising (0 < pct_start < 1).
        div_factor: Initial LR is ``max_lr / div_factor`` (> 0).
        final_div_factor: Final LR is ``initial / final_div_factor`` (> 0).
        anneal: ``"cos"`` or ``"linear"``.
        three_phase: Use the three-phase variant.
        cycle_momentum, base_momentum, max_momentum: see ``MomentumCycling``.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit``.

    Example:
        >>> from lr_plugins import OneCycle
        >>> s = OneCycle(max_lr=1.0, pct_start=0.5, div_factor=10, anneal="linear", unit="step")
        >>> [round(x, 6) for x in s.preview(5).tolist()]
        [0.1, 0.7, 0.800002, 0.400006, 1e-05]
    """

    needs_total = True

    def __init__(
        self,
        *,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal: str = "cos",
        three_phase: bool = False,
        **common: Unpack[OneCycleArgs],
    ) -> None:
        self.pct_start = check_real("pct_start", pct_start, low=0.0, high=1.0, low_open=True, high_open=True)
        self.div_factor = check_real("div_factor", div_factor, low=0.0, low_open=True)
        self.final_div_factor = check_real("final_div_factor", final_div_factor, low=0.0, low_open=True)
        self.anneal = check_choice("anneal", anneal, ANNEAL)
        self.three_phase = check_bool("three_phase", three_phase)
        super().__init__(**common)

    def check_peak(self, peak: float, what: str = "max_lr") -> None:
        super().check_peak(peak, what)
        if self.three_phase and self.min_lr > peak / self.div_factor:
            raise ValueError(
                f"min_lr={self.min_lr!r} is not allowed with three_phase=True: it must be <= the initial LR "
                f"({what}={peak!r} / div_factor={self.div_factor!r}), or the third phase would raise the LR."
            )

    def _ends(self, n: float) -> list[float]:
        """The last step of each phase, as torch computes them."""
        if self.three_phase:
            return [self.pct_start * n - 1, 2 * self.pct_start * n - 2, n - 1]
        return [self.pct_start * n - 1, n - 1]

    def check_total(self, total_steps: float, steps_per_epoch: float) -> None:
        super().check_total(total_steps, steps_per_epoch)
        n = total_steps - self.warmup * self.steps_per_unit(steps_per_epoch, total_steps)
        if n < 1:
            raise ValueError(
                f"warmup={self.warmup!r} ({self.unit}s) is not allowed: it leaves {n:g} optimizer steps of "
                f"{total_steps:g} for the cycle, which needs at least one."
            )

    def _phase(self, s: float, n: float) -> tuple[int, float]:
        """(phase index, progress within the phase) at step ``s`` of ``n``; clamped at the end."""
        s = min(s, n - 1)
        start = 0.0
        ends = self._ends(n)
        for i, end in enumerate(ends):
            if s <= end or i == len(ends) - 1:
                if end == start:  # a phase of zero length (torch divides by zero here): its end value
                    return i, 1.0
                return i, min(max((s - start) / (end - start), 0.0), 1.0)
            start = end
        raise AssertionError("unreachable")

    def _anneal(self, start: float, end: float, p: float) -> float:
        if self.anneal == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * p) + 1)
        return (end - start) * p + start

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        initial = peak / self.div_factor
        final = self.min_lr if self.min_lr > 0 else initial / self.final_div_factor
        points = [initial, peak, initial, final] if self.three_phase else [initial, peak, final]
        i, p = self._phase(round(t * steps_per_unit, 9), total * steps_per_unit)
        return self._anneal(points[i], points[i + 1], p)

    def momentum_body(self, t: float, total: float, steps_per_unit: float) -> float:
        lo, hi = self.base_momentum, self.max_momentum
        points = [hi, lo, hi, hi] if self.three_phase else [hi, lo, hi]
        i, p = self._phase(round(t * steps_per_unit, 9), total * steps_per_unit)
        return self._anneal(points[i], points[i + 1], p)
