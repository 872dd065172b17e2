"""Monotone decays: step (and multi-step), exponential, inverse-time, and a constant LR."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_bool, check_real
from lr_plugins.schedules.base import CommonArgs, Curve, at_most

__all__ = ["StepDecayCurve", "ExponentialDecayCurve", "InverseTimeDecayCurve", "ConstantCurve"]


class StepDecayCurve(Curve, name="StepDecay"):
    r"""Multiply the LR by ``gamma`` every ``step_size`` units, or at each of ``milestones``.

    .. math:: \eta(t) = \max(\eta_{min}, \eta_{max} \gamma^{k}), \quad
              k = \lfloor t / step\_size \rfloor \text{ or } k = \#\{m \in milestones : m \le t\}

    Equals ``torch.optim.lr_scheduler.StepLR`` (``step_size``) or ``MultiStepLR``
    (``milestones``) with ``unit="step"``. Give exactly one of ``step_size`` and ``milestones``.

    Args:
        step_size: Units between two decays (> 0).
        gamma: Factor applied at each decay (0 < gamma <= 1).
        milestones: Increasing times (in units, after warmup) at which to decay.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit``.

    Example:
        >>> from lr_plugins import StepDecay
        >>> StepDecay(max_lr=1.0, milestones=[2, 3], gamma=0.5, unit="step").preview(4).tolist()
        [1.0, 1.0, 0.5, 0.25]
        >>> StepDecay(max_lr=1.0, milestones=[0.5, 0.75], unit="fraction").preview(4).tolist()
        [1.0, 1.0, 0.1, 0.010000000000000002]
    """


    def __init__(
        self,
        *,
        step_size: float | None = None,
        gamma: float = 0.1,
        milestones: Sequence[float] | None = None,
        **common: Unpack[CommonArgs],
    ) -> None:
        self.step_size = check_real("step_size", step_size, low=0.0, low_open=True, optional=True)
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)
        if milestones is not None:
            if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
                raise TypeError(f"milestones={milestones!r} is not allowed: milestones must be a list of numbers.")
            milestones = [check_real(f"milestones[{i}]", m, low=0.0, low_open=True) for i, m in enumerate(milestones)]
            if any(b <= a for a, b in zip(milestones, milestones[1:])):
                raise ValueError(f"milestones={milestones!r} is not allowed: milestones must be strictly increasing.")
            milestones = list(milestones)
        if (self.step_size is None) == (milestones is None or len(milestones) == 0):
            raise ValueError(
                f"step_size={step_size!r}, milestones={milestones!r} is not allowed: give exactly one of "
                "step_size (decay every step_size units) and milestones (decay at these times)."
            )
        self.milestones = milestones
        super().__init__(**common)
        self.check_length("step_size", self.step_size)
        for i, m in enumerate(self.milestones or []):
            self.check_length(f"milestones[{i}]", m)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        size = self.step_size  # exactly one of step_size and milestones is set
        if size is not None:
            k = math.floor(t / size)
            if at_most((k + 1) * size, t):  # float noise just below a multiple
                k += 1
        else:
            k = bisect.bisect_right(self.milestones or [], t * (1 + 1e-12))
        return max(self.min_lr, peak * self.gamma**k)


class ExponentialDecayCurve(Curve, name="ExponentialDecay"):
    r"""Exponential decay: :math:`\eta(t) = \max(\eta_{min}, \eta_{max} e^{-rate \, t})`.

    ``staircase=True`` uses :math:`\lfloor t \rfloor`. With ``rate = -ln(gamma)`` and
    ``unit="step"`` it equals ``torch.optim.lr_scheduler.ExponentialLR(gamma)``.

    Args:
        rate: Decay rate per unit (>= 0).
        staircase: Decay in whole units only.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit``.

    Example:
        >>> from lr_plugins import ExponentialDecay
        >>> round(ExponentialDecay(max_lr=1.0, rate=0.5, unit="step").lr_at(2), 6)
        0.367879
    """


    def __init__(self, *, rate: float, staircase: bool = False, **common: Unpack[CommonArgs]) -> None:
        self.rate = check_real("rate", rate, low=0.0)
        self.staircase = check_bool("staircase", staircase)
        super().__init__(**common)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        if self.staircase:
            t = math.floor(t + 1e-9)
        return max(self.min_lr, peak * math.exp(-self.rate * t))


class InverseTimeDecayCurve(Curve, name="InverseTimeDecay"):
    r"""Inverse-time decay: :math:`\eta(t) = \max(\eta_{min}, \eta_{max} / (1 + rate \, t))`.

    ``staircase=True`` uses :math:`\lfloor t \rfloor`.

    Args:
        rate: Decay rate per unit (>= 0).
        staircase: Decay in whole units only.
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit``.

    Example:
        >>> from lr_plugins import InverseTimeDecay
        >>> InverseTimeDecay(max_lr=1.0, rate=0.5, unit="step").preview(3).tolist()
        [1.0, 0.6666666666666666, 0.5]
    """


    def __init__(self, *, rate: float, staircase: bool = False, **common: Unpack[CommonArgs]) -> None:
        self.rate = check_real("rate", rate, low=0.0)
        self.staircase = check_bool("staircase", staircase)
        super().__init__(**common)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        if self.staircase:
            t = math.floor(t + 1e-9)
        return max(self.min_lr, peak / (1 + self.rate * t))


class ConstantCurve(Curve, name="Constant"):
    r"""A constant LR after the (optional) warmup: :math:`\eta(t) = \eta_{max}`.

    Example:
        >>> from lr_plugins import Constant
        >>> Constant(max_lr=0.5, warmup=2, unit="step").preview(4).tolist()
        [0.0, 0.25, 0.5, 0.5]
    """


    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        return peak
