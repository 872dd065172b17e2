"""LR range test (Smith, 2017) with a pick rule that fits the schedule that follows it.

* :class:`LRFinder`: the callback (test at fit start, exact restore, pick applied, saved in checkpoints);
* :func:`find_lr`: the same test in a throw-away Trainer, returning the result;
* :class:`LRFinderResult`: the curve, the picks, the rule used and why;
* :data:`RULES` / :func:`rule`: the registry of pick rules (:mod:`~lr_plugins.finder.rules`), each a
  function of a :class:`LossCurve` (:mod:`~lr_plugins.finder.curve`);
* :func:`smooth`, :func:`slope`, :func:`start_level`: the curve arithmetic every rule reads
  (:mod:`~lr_plugins.finder.curve`), public so that new rules and benchmarks reuse it;
* :mod:`~lr_plugins.finder.auto`: what ``suggestion="auto"`` resolves to;
* :mod:`~lr_plugins.finder.suggest`: every rule on a curve, with warnings;
  :mod:`~lr_plugins.finder.range_test`: the loop; :mod:`~lr_plugins.finder.state`: snapshot and
  restore; :mod:`~lr_plugins.finder.apply`: where the pick goes; :mod:`~lr_plugins.finder.plot`.

Example:
    >>> from lr_plugins import LRFinder, SGDR
    >>> callbacks = [LRFinder(num_steps=100), SGDR(cycle_length=5)]
    >>> from lr_plugins.finder import RULES
    >>> ["auto", *RULES]
    ['auto', 'steepest', 'valley', 'minimum/10']
"""

from lr_plugins.finder.api import find_lr
from lr_plugins.finder.callback import LRFinder
from lr_plugins.finder.curve import LossCurve, slope, smooth, start_level
from lr_plugins.finder.result import LRFinderResult
from lr_plugins.finder.rules import RULES, rule
from lr_plugins.finder.suggest import suggest

__all__ = ["LRFinder", "find_lr", "LRFinderResult", "LossCurve", "RULES", "rule", "suggest", "smooth", "slope", "start_level"]
