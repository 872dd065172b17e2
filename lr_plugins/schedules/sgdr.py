"""SGDR: cosine annealing with warm restarts (Loshchilov & Hutter, 2017)."""

from __future__ import annotations

import math

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_real
from lr_plugins.schedules.base import _FIXUPS, MIN_CYCLE, CommonArgs, CyclicCurve, at_most

__all__ = ["SGDRCurve", "QUARTERS"]

#: With ``cycle_length=None`` the first cycle is ``1 / QUARTERS`` of the training after warmup.
QUARTERS = 4


class SGDRCurve(CyclicCurve, name="SGDR"):
    r"""Cosine annealing with warm restarts, eq. (5) of Loshchilov & Hutter (2017).

    Cycle ``i`` lasts :math:`T_i = T_0 T_{mult}^i` units and peaks at
    :math:`\eta^i_{max} = \eta_{max} \cdot decay^i`; within it

    .. math:: \eta_t = \eta_{min} + (\eta^i_{max} - \eta_{min}) \frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    where :math:`T_{cur}` is the time since the last restart, advanced every optimizer step
    (fractional epochs with ``unit="epoch"``). Computed in closed form: the cycle of time
    ``t`` is :math:`i = \lfloor \log_{T_{mult}}(1 + t (T_{mult} - 1) / T_0) \rfloor`. With integer
    ``cycle_mult`` and ``unit="step"`` it equals ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``.
    Cycles go on for as long as training does.

    ``cycle_length=None`` fits the cycles to the planned training: with :math:`T` the training
    after warmup in ``unit``s (``total_steps / steps_per_unit - warmup``),
    :math:`T_0 = T / 4`, so ``cycle_mult=1`` gives four whole cycles, the last one ending with
    training. It then needs the total number of steps (``needs_total``).

    Args:
        cycle_length: :math:`T_0`, the first cycle's length in ``unit``s (>= ``MIN_CYCLE`` = 1e-6;
            <= 1 with ``unit="fraction"``), or ``None`` (the default, as in the ``sgdr`` preset) for a quarter of the training after warmup.
        cycle_mult: :math:`T_{mult}` (float >= 1): each cycle is this much longer than the last.
        cycle_decay: Peak of cycle ``i`` is ``max(min_lr, max_lr * cycle_decay**i)`` (0 < decay <= 1):
            once the decayed peak would fall below ``min_lr`` the LR holds ``min_lr``.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit``.

    Example:
        >>> from lr_plugins import SGDR
        >>> s = SGDR(max_lr=1.0, cycle_length=4, unit="step")
        >>> [round(x, 3) for x in s.preview(6).tolist()]
        [1.0, 0.854, 0.5, 0.146, 1.0, 0.854]
        >>> SGDR(cycle_length=None).cycle_ends(40, steps_per_epoch=5)  # 8 epochs: T_0 = 2 epochs
        [9, 19, 29, 39]
    """


    def __init__(
        self,
        *,
        cycle_length: float | None = None,
        cycle_mult: float = 1.0,
        cycle_decay: float = 1.0,
        **common: Unpack[CommonArgs],
    ) -> None:
        self.cycle_length = check_real("cycle_length", cycle_length, low=MIN_CYCLE, optional=True)
        self.cycle_mult = check_real("cycle_mult", cycle_mult, low=1.0)
        self.cycle_decay = check_real("cycle_decay", cycle_decay, low=0.0, high=1.0, low_open=True)
        super().__init__(**common)
        self.check_length("cycle_length", self.cycle_length)
        if self.cycle_length is None:
            self.needs_total = True

    def needs_total_because(self) -> str:
        if self.cycle_length is None and self.unit != "fraction":
            return f"cycle_length=None makes the first cycle 1/{QUARTERS} of it"
        return super().needs_total_because()

    def check_total(self, total_steps: float, steps_per_epoch: float) -> None:
        super().check_total(total_steps, steps_per_epoch)
        after = total_steps / self.steps_per_unit(steps_per_epoch, total_steps) - self.warmup  # in units
        if self.cycle_length is None and self.first_cycle(after) <= 0:
            raise ValueError(
                f"total_steps={total_steps:g} is not allowed with cycle_length=None and warmup={self.warmup!r} "
                f"({self.unit}s): no training is left after the warmup to place the cycles in "
                "(give cycle_length, shorten the warmup or train longer)."
            )

    def first_cycle(self, total: float) -> float:
        """:math:`T_0` in units: ``cycle_length``, or ``total / 4`` (``total``: training after warmup) when None."""
        return self.cycle_length if self.cycle_length is not None else total / QUARTERS

    def cycle_start(self, i: int, total: float) -> float:
        """Time after warmup at which cycle ``i`` starts."""
        t0 = self.first_cycle(total)
        if self.cycle_mult == 1.0:
            return t0 * i
        return t0 * (self.cycle_mult**i - 1) / (self.cycle_mult - 1)

    def cycle_boundary(self, k: int, total: float) -> float:
        return self.cycle_start(k + 1, total)

    def cycle_index(self, t: float, total: float) -> int:
        t0 = self.first_cycle(total)
        if self.cycle_mult == 1.0:
            i = int(t // t0)
        else:
            i = int(math.log(1 + t * (self.cycle_mult - 1) / t0, self.cycle_mult))
        # Correct float error of the logarithm at boundaries (a bounded number of times: where
        # float spacing exceeds a cycle the index is as good as the arithmetic allows).
        for _ in range(_FIXUPS):
            if not at_most(self.cycle_start(i + 1, total), t):
                break
            i += 1
        for _ in range(_FIXUPS):
            if i <= 0 or at_most(self.cycle_start(i, total), t):
                break
            i -= 1
        return i

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        i = self.cycle_index(t, total)
        t_i = self.first_cycle(total) * self.cycle_mult**i
        t_cur = t - self.cycle_start(i, total)
        top = max(self.min_lr, peak * self.cycle_decay**i)  # decayed below the floor: hold the floor
        return self.min_lr + (top - self.min_lr) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
