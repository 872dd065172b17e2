"""Warmup-stable-decay (WSD): warmup, a constant peak, then a cooldown over the last share of training."""

from __future__ import annotations

import math

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_choice, check_real
from lr_plugins.schedules.base import CommonArgs, Curve, snap

__all__ = ["WarmupStableDecayCurve", "DECAY_SHAPES"]

#: The cooldown shapes: ``f(p)`` for the progress ``p`` in [0, 1] through the decay.
DECAY_SHAPES = ("1-sqrt", "linear", "cosine")


class WarmupStableDecayCurve(Curve, name="WarmupStableDecay"):
    r"""Warmup, a stable phase at the peak, then a decay to ``min_lr`` over the last ``decay`` of training.

    With ``T`` the total steps, the decay starts at step :math:`D = (1 - decay) T` and, with
    :math:`p = (s - D) / (T - D)` (clamped to 1),

    .. math:: \eta = \eta_{min} + (\eta_{max} - \eta_{min}) f(p), \quad
              f(p) = 1 - \sqrt{p} \;(\text{"1-sqrt"}),\; 1 - p \;(\text{"linear"}),\;
              \tfrac{1}{2}(1 + \cos \pi p) \;(\text{"cosine"})

    Between the warmup and :math:`D` the LR is the peak. Hägele et al. (2024) find the 1-sqrt
    cooldown over 20% of training matches a cosine schedule; because nothing before the
    decay depends on the length of training, a run in its stable phase can be extended, or
    branched into several cooldowns of different lengths, seamlessly. With ``warmup_start_lr =
    min_lr`` and ``unit="step"`` it equals ``transformers.get_wsd_schedule`` (linear warmup,
    ``min_lr_ratio = min_lr / max_lr``, ``num_decay_steps = decay * T``).

    Args:
        decay: Share of the whole training spent decaying (``0 <= decay <= 1``), whatever ``unit``.
        decay_shape: ``"1-sqrt"`` (default), ``"linear"`` or ``"cosine"``.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit`` (see ``Curve``).

    Example:
        >>> from lr_plugins import WarmupStableDecay
        >>> s = WarmupStableDecay(max_lr=1.0, warmup=2, decay=0.5, decay_shape="linear", unit="step")
        >>> s.preview(8).tolist()
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    """

    needs_total = True

    def __init__(self, *, decay: float = 0.2, decay_shape: str = "1-sqrt", **common: Unpack[CommonArgs]) -> None:
        self.decay = check_real("decay", decay, low=0.0, high=1.0)
        self.decay_shape = check_choice("decay_shape", decay_shape, DECAY_SHAPES)
        super().__init__(**common)

    def decay_start(self, total_steps: float) -> float:
        """The optimizer step where the decay begins: ``(1 - decay) * total_steps``."""
        return snap((1.0 - self.decay) * total_steps)

    def check_total(self, total_steps: float, steps_per_epoch: float) -> None:
        super().check_total(total_steps, steps_per_epoch)
        spu = self.steps_per_unit(steps_per_epoch, total_steps)
        if self.warmup * spu > self.decay_start(total_steps) * (1 + 1e-12):
            raise ValueError(
                f"warmup={self.warmup!r} ({self.unit}s) is not allowed with decay={self.decay!r}: the warmup must end "
                f"before the decay starts, at {(1 - self.decay) * total_steps / spu:g} {self.unit}s "
                f"(of {total_steps / spu:g})."
            )

    def total_free_steps(self, total_steps: float, steps_per_epoch: float) -> float:
        """Warmup and stable phase do not depend on the length of training; the decay does.

        With ``unit="fraction"`` a warmup is a share of training too (0 free steps); without a
        warmup the stable phase is free in any unit.
        """
        if self.unit == "fraction" and self.warmup > 0:
            return 0.0
        return self.decay_start(total_steps)

    def lr(self, step: float, total_steps: float, steps_per_epoch: float, peak: float) -> float:
        start = self.decay_start(total_steps)
        if step < start:  # warmup (the check above keeps it before the decay) and the stable phase
            return super().lr(step, total_steps, steps_per_epoch, peak)
        span = total_steps - start
        p = 1.0 if span <= 0 else min((step - start) / span, 1.0)
        if self.decay_shape == "linear":
            f = 1.0 - p
        elif self.decay_shape == "cosine":
            f = 0.5 * (1.0 + math.cos(math.pi * p))
        else:
            f = 1.0 - math.sqrt(p)
        return self.min_lr + (peak - self.min_lr) * f

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        return peak  # the stable phase (``lr`` computes the decay in optimizer steps)
