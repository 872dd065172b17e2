"""Pure closed-form LR curves: functions of the optimizer step, with no Lightning state.

The public callbacks in :mod:`lr_plugins.callback` inherit their formulas from these classes.
Each curve registers itself in :data:`CURVES` (``{"WarmupCosine": WarmupCosineCurve, "SGDR":
SGDRCurve, ...}``) when its module is imported below: the one list of schedules the callbacks,
tests and docs derive from. A curve file gets one line here, its ``import *`` (which type
checkers read too); ``__all__`` is what those lines bring in, and
``tests/test_schedules_registry.py`` names a file of this folder that has no line.

Example:
    >>> from lr_plugins.schedules import CURVES
    >>> list(CURVES)[:2]
    ['WarmupCosine', 'SGDR']
"""

# ruff: noqa: F403, I001 - the order of these lines is the order of CURVES
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING as _TYPE_CHECKING

from lr_plugins.schedules.base import *
from lr_plugins.schedules.cosine import *
from lr_plugins.schedules.sgdr import *
from lr_plugins.schedules.cyclic import *
from lr_plugins.schedules.decay import *
from lr_plugins.schedules.wsd import *
from lr_plugins.schedules.polynomial import *
from lr_plugins.schedules.inverse_sqrt import *
from lr_plugins.schedules.plateau import *
from lr_plugins.schedules.free import *

if not _TYPE_CHECKING:  # type checkers take the star imports' names as the exports
    __all__ = [n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _ModuleType)]
