"""Inverse square root decay after a warmup (the Transformer's schedule, Vaswani et al. 2017)."""

from __future__ import annotations

import math

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_real
from lr_plugins.schedules.base import CommonArgs, Curve

__all__ = ["InverseSqrtCurve"]


class InverseSqrtCurve(Curve, name="InverseSqrt"):
    r"""Linear warmup, then the LR falls as one over the square root of time.

    With ``t`` the time after warmup and :math:`\tau` the ``timescale``:

    .. math:: \eta(t) = \max\left(\eta_{min}, \eta_{max} \sqrt{\tau / (t + \tau)}\right)

    ``timescale=None`` is the warmup (the usual convention, as in transformers and big_vision),
    which gives the Transformer's ``min(s / w**1.5, 1 / sqrt(s))`` shape up to the peak. The curve
    needs no end: training can be extended at any time. With ``unit="step"`` and
    ``min_lr=0`` it equals ``transformers.get_inverse_sqrt_schedule``.

    Args:
        timescale: :math:`\tau` in ``unit``s (> 0), or ``None`` for ``warmup`` (then ``warmup`` must be > 0).
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit`` (see ``Curve``).

    Example:
        >>> from lr_plugins import InverseSqrt
        >>> InverseSqrt(max_lr=1.0, warmup=1, unit="step").preview(5).tolist()
        [0.0, 1.0, 0.7071067811865476, 0.5773502691896257, 0.5]
    """

    def __init__(self, *, timescale: float | None = None, **common: Unpack[CommonArgs]) -> None:
        self.timescale = check_real("timescale", timescale, low=0.0, low_open=True, optional=True)
        super().__init__(**common)
        self.check_length("timescale", self.timescale)
        if self.timescale is None and self.warmup == 0:
            raise ValueError(
                "timescale=None is not allowed with warmup=0: timescale=None means the warmup's length; "
                "give a warmup or a timescale (> 0, in units)."
            )

    @property
    def tau(self) -> float:
        """The timescale in use: ``timescale``, or ``warmup`` when it is None."""
        return self.warmup if self.timescale is None else self.timescale

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        return max(self.min_lr, peak * math.sqrt(self.tau / (t + self.tau)))
