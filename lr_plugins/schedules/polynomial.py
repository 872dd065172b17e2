"""Polynomial decay to ``min_lr`` at the end of training (power 1: linear decay to zero)."""

from __future__ import annotations

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_real
from lr_plugins.schedules.base import CommonArgs, Curve

__all__ = ["PolynomialDecayCurve"]


class PolynomialDecayCurve(Curve, name="PolynomialDecay"):
    r"""Linear warmup, then a polynomial decay to ``min_lr`` at the end of training.

    With ``T`` the training length after warmup and :math:`p = \min(t / T, 1)`:

    .. math:: \eta(t) = \eta_{min} + (\eta_{max} - \eta_{min}) (1 - p)^{power}

    ``power=1`` is linear decay to zero (the ``linear`` preset; Bergsma et al. 2025 find it beats
    cosine to 10%). With ``unit="step"`` it equals ``torch.optim.lr_scheduler.PolynomialLR``
    (``min_lr=0``, no warmup) and ``transformers.get_polynomial_decay_schedule_with_warmup``
    (``lr_end=min_lr``; with ``power=1, min_lr=0``: ``get_linear_schedule_with_warmup``).

    Args:
        power: The exponent (> 0): 1 is linear, 2 quadratic, 0.5 a square root.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit`` (see ``Curve``).

    Example:
        >>> from lr_plugins import PolynomialDecay
        >>> PolynomialDecay(max_lr=1.0, warmup=1, power=2, unit="step").preview(5).tolist()
        [0.0, 1.0, 0.5625, 0.25, 0.0625]
    """

    needs_total = True

    def __init__(self, *, power: float = 1.0, **common: Unpack[CommonArgs]) -> None:
        self.power = check_real("power", power, low=0.0, low_open=True)
        super().__init__(**common)

    def total_free_steps(self, total_steps: float, steps_per_epoch: float) -> float:
        """The warmup does not depend on the length of training; the decay does from its first step."""
        if self.unit == "fraction":
            return 0.0
        return self.warmup * self.steps_per_unit(steps_per_epoch, total_steps)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        p = min(t / total, 1.0) if total > 0 else 1.0
        return self.min_lr + (peak - self.min_lr) * (1.0 - p) ** self.power
