"""Pure closed-form LR curves: functions of the optimizer step, with no Lightning state.

The public callbacks in :mod:`lr_plugins.callback` inherit their formulas from these classes.
Every module of this package is imported here, so a new curve file registers itself in
:data:`CURVES` (``{"WarmupCosine": WarmupCosineCurve, "SGDR": SGDRCurve, ...}``), the one list
of schedules the callbacks, tests and docs derive from.

Example:
    >>> from lr_plugins.schedules import CURVES
    >>> list(CURVES)[:2]
    ['WarmupCosine', 'SGDR']
"""

import importlib as _importlib  # noqa: I001 - the order below is the order of CURVES
import pkgutil as _pkgutil

from lr_plugins.schedules.base import (
    CURVES,
    MAX_PREVIEW_STEPS,
    MAX_STEP,
    MAX_TIME,
    MIN_CYCLE,
    UNITS,
    CommonArgs,
    Curve,
    CyclicCurve,
    MomentumArgs,
    MomentumCycling,
    SharedArgs,
)
from lr_plugins.schedules.cosine import WarmupCosineCurve
from lr_plugins.schedules.sgdr import SGDRCurve
from lr_plugins.schedules.cyclic import SMITH_FLOOR, CyclicLRArgs, CyclicLRCurve, OneCycleArgs, OneCycleCurve
from lr_plugins.schedules.decay import ConstantCurve, ExponentialDecayCurve, InverseTimeDecayCurve, StepDecayCurve

for _module in _pkgutil.iter_modules(__path__):  # a new curve file needs no line here
    _importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CURVES",
    "UNITS",
    "MAX_PREVIEW_STEPS",
    "MAX_STEP",
    "MAX_TIME",
    "MIN_CYCLE",
    "SMITH_FLOOR",
    "Curve",
    "CyclicCurve",
    "MomentumCycling",
    "SharedArgs",
    "CommonArgs",
    "MomentumArgs",
    "CyclicLRArgs",
    "OneCycleArgs",
    "WarmupCosineCurve",
    "SGDRCurve",
    "CyclicLRCurve",
    "OneCycleCurve",
    "StepDecayCurve",
    "ExponentialDecayCurve",
    "InverseTimeDecayCurve",
    "ConstantCurve",
]
