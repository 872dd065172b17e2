"""Pure closed-form LR curves: functions of the optimizer step, with no Lightning state.

The public callbacks in :mod:`lr_plugins.callback` inherit their formulas from these classes.
"""

from lr_plugins.schedules.base import Curve, CyclicCurve, MomentumCycling
from lr_plugins.schedules.cosine import WarmupCosineCurve
from lr_plugins.schedules.cyclic import CyclicLRCurve, OneCycleCurve
from lr_plugins.schedules.decay import ConstantCurve, ExponentialDecayCurve, InverseTimeDecayCurve, StepDecayCurve
from lr_plugins.schedules.sgdr import SGDRCurve

__all__ = [
    "Curve",
    "CyclicCurve",
    "MomentumCycling",
    "WarmupCosineCurve",
    "SGDRCurve",
    "CyclicLRCurve",
    "OneCycleCurve",
    "StepDecayCurve",
    "ExponentialDecayCurve",
    "InverseTimeDecayCurve",
    "ConstantCurve",
]
