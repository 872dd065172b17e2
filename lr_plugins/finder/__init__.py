"""LR range test (Smith, 2017) with a robust steepest-slope pick.

* :class:`LRFinder`: the callback (test at fit start, exact restore, pick applied);
* :func:`find_lr`: the same test in a throw-away Trainer, returning the result;
* :class:`LRFinderResult`: the curve, the picks and diagnostics;
* :mod:`~lr_plugins.finder.suggest`: the pure-numpy rules (steepest, valley, minimum/10, peak);
* :mod:`~lr_plugins.finder.range_test`: the loop; :mod:`~lr_plugins.finder.state`: snapshot and
  restore; :mod:`~lr_plugins.finder.apply`: where the pick goes; :mod:`~lr_plugins.finder.plot`.

Example:
    >>> from lr_plugins import LRFinder, SGDR
    >>> callbacks = [LRFinder(num_steps=100), SGDR(cycle_length=5)]
"""

from lr_plugins.finder.api import find_lr
from lr_plugins.finder.callback import LRFinder
from lr_plugins.finder.result import LRFinderResult
from lr_plugins.finder.suggest import RULES, suggest

__all__ = ["LRFinder", "find_lr", "LRFinderResult", "RULES", "suggest"]
