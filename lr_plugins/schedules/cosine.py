"""Warmup + hold + cosine annealing to the floor over the rest of training."""

from __future__ import annotations

import math

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_real
from lr_plugins.schedules.base import CommonArgs, Curve

__all__ = ["WarmupCosineCurve"]


class WarmupCosineCurve(Curve, name="WarmupCosine"):
    r"""Linear warmup, a hold at the peak, then one cosine decay to ``min_lr`` at the end of training.

    With ``T`` the training length after warmup and ``p = (t - hold) / (T - hold)``:

    .. math:: \eta(t) = \eta_{min} + (\eta_{max} - \eta_{min}) \frac{1 + \cos(\pi p)}{2}

    ``p`` is clamped to 1, so the LR holds ``min_lr`` once training runs past its planned end.
    With ``warmup=0, hold=0, unit="step"`` it equals ``torch.optim.lr_scheduler.CosineAnnealingLR``
    with ``T_max=total_steps``.

    Args:
        hold: Time spent at the peak after the warmup, in ``unit``s.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit`` (see ``Curve``).

    Example:
        >>> from lr_plugins import WarmupCosine
        >>> s = WarmupCosine(max_lr=1.0, warmup=2, unit="step")
        >>> [round(x, 3) for x in s.preview(6).tolist()]
        [0.0, 0.5, 1.0, 0.854, 0.5, 0.146]
    """

    needs_total = True

    def __init__(self, *, hold: float = 0, **common: Unpack[CommonArgs]) -> None:
        self.hold = check_real("hold", hold, low=0.0)
        super().__init__(**common)
        self.check_length("hold", self.hold)

    def check_total(self, total_steps: float, steps_per_epoch: float) -> None:
        super().check_total(total_steps, steps_per_epoch)
        spu = self.steps_per_unit(steps_per_epoch, total_steps)
        if (self.warmup + self.hold) * spu >= total_steps:
            raise ValueError(
                f"warmup={self.warmup!r} + hold={self.hold!r} ({self.unit}s) is not allowed: together "
                f"they must be shorter than training ({total_steps / spu:g} {self.unit}s)."
            )

    def total_free_steps(self, total_steps: float, steps_per_epoch: float) -> float:
        """Warmup and hold do not depend on the length of training; the cosine does."""
        if self.unit == "fraction":
            return 0.0
        return (self.warmup + self.hold) * self.steps_per_unit(steps_per_epoch, total_steps)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        if t < self.hold:
            return peak
        p = min((t - self.hold) / (total - self.hold), 1.0)
        return self.min_lr + (peak - self.min_lr) * (1 + math.cos(math.pi * p)) / 2
