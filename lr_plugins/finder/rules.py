"""The registry of pick rules: one function per rule, registered in one place, one signature.

A rule reads a :class:`~lr_plugins.finder.curve.LossCurve` (the recorded points, the zero-phase
smoothed loss ``s``, ``x = log10(lr)``, the starting level ``s_0`` and the index of the minimum)
and returns one LR. Every list of rules (the values ``LRFinder(suggestion=...)`` accepts, the
plot's markers, the config comment, the docs) is read from :data:`RULES`. Adding a rule::

    @rule("my-rule", marker="*", color="tab:pink")
    def my_rule(curve: LossCurve) -> float:
        \"\"\"One line that says what it picks.\"\"\"
        return float(curve.lrs[curve.i_min]) / 3

The rules (``s`` smoothed, ``x = log10(lr)``):

* ``steepest``: the fastest fall of the loss per decade of LR, ``ds/dx``, within the descent
  before the loss minimum, located robustly as the slope-weighted centre of the points at least
  30% as steep as the steepest (:func:`steepest`);
* ``valley``: fastai's rule: the longest strictly decreasing subsequence of ``s``, and the point
  about half-way (``start + len/3 + len/6``) along it (:func:`valley`);
* ``minimum/10``: ``lr[argmin s] / 10`` (:func:`minimum_tenth`).

A rule whose constants were fitted on the benchmark's tasks stays here only while a pre-registered
test on fresh tasks keeps it within 2 points of the grid best (issue 14); ``peak`` and ``basin``
did not, and live in the lab (``benchmarks/_rules.py``; ``docs/research/lr-finder-schedule.md``).

Example:
    >>> import numpy as np
    >>> from lr_plugins.finder.curve import LossCurve
    >>> lrs = np.logspace(-4, 1, 60)
    >>> c = LossCurve.from_losses(lrs, 2.0 - np.tanh(2 * (np.log10(lrs) + 2)) + np.where(lrs > 1, 10 * (lrs - 1), 0))
    >>> round(float(np.log10(RULES["steepest"].pick(c))), 1)
    -2.0
    >>> list(RULES)
    ['steepest', 'valley', 'minimum/10']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lr_plugins.finder.curve import LossCurve, slope

__all__ = ["Rule", "RULES", "rule", "steepest", "valley", "valley_index", "minimum_tenth", "STEEP_LEVEL"]

STEEP_LEVEL = 0.3


@dataclass(frozen=True)
class Rule:
    """A registered pick rule.

    Attributes:
        name: What ``LRFinder(suggestion=...)`` and the config accept.
        pick: ``pick(curve) -> lr``.
        marker: Matplotlib marker of its point in the figure.
        color: Its colour in the figure.
        summary: One line for the docs and the config comment (the function's first docstring line).
    """

    name: str
    pick: Callable[[LossCurve], float]
    marker: str
    color: str
    summary: str


#: Every pick rule, by name, in registration order.
RULES: dict[str, Rule] = {}


def rule(name: str, *, marker: str = "x", color: str = "black") -> Callable[[Callable[[LossCurve], float]], Callable[[LossCurve], float]]:
    """Register ``fn(curve: LossCurve) -> float`` as the pick rule ``name`` (names are unique)."""

    def register(fn: Callable[[LossCurve], float]) -> Callable[[LossCurve], float]:
        if name in RULES or name == "auto":
            raise ValueError(f"rule name {name!r} is not allowed: it is taken (taken: auto, {', '.join(RULES)}).")
        summary = (fn.__doc__ or name).strip().splitlines()[0]
        RULES[name] = Rule(name, fn, marker, color, summary)
        return fn

    return register


@rule("steepest", marker="o", color="tab:red")
def steepest(curve: LossCurve, level: float = STEEP_LEVEL) -> float:
    """Where the loss falls fastest per decade of LR, before the smoothed minimum.

    With ``d_i`` the slope against ``x_i = log10(lr_i)`` for ``i <= argmin s`` and
    ``w_i = max(0, -d_i - level * max_j(-d_j))``, the pick is ``10 ** (sum w_i x_i / sum w_i)``: the
    slope-weighted centre of the part of the descent that is at least ``level`` (30%) as steep as
    its steepest point. On a clean descent it is the most negative slope itself; on a long noisy
    one (Adam) it does not jump between two nearly equal local slope peaks from seed to seed. A
    curve whose minimum is its first point gets the first LR.

    Example:
        >>> lrs = np.logspace(-5, 0, 51)
        >>> c = LossCurve.from_smoothed(lrs, -np.tanh(np.log10(lrs) + 3), -np.tanh(np.log10(lrs) + 3))
        >>> round(float(np.log10(steepest(c))), 6)
        -3.0
    """
    end = curve.i_min
    if end == 0:
        return float(curve.lrs[0])
    d = slope(curve.lrs, curve.smoothed)[: end + 1]
    w = np.maximum(0.0, -d - level * max(float(-d.min()), 0.0))
    if w.sum() <= 0:
        return float(curve.lrs[int(np.argmin(d))])
    return float(10 ** (np.sum(w * curve.log_lrs[: end + 1]) / np.sum(w)))


def valley_index(smoothed: np.ndarray) -> int:
    """fastai's ``valley`` index: a point ~half-way down the longest decreasing run of ``smoothed``.

    Example:
        >>> valley_index(np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 9.0]))
        2
    """
    s = np.asarray(smoothed, dtype=float)
    n = len(s)
    lds = np.ones(n, dtype=int)
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if s[i] < s[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return int(min(n - 1, max(0, max_start + int(sections) + int(sections / 2))))


@rule("valley", marker="s", color="tab:green")
def valley(curve: LossCurve) -> float:
    """fastai's rule: about half-way down the longest decreasing run of the smoothed loss."""
    return float(curve.lrs[valley_index(curve.smoothed)])


@rule("minimum/10", marker="^", color="tab:purple")
def minimum_tenth(curve: LossCurve) -> float:
    """The LR at the smoothed minimum, divided by 10."""
    return float(curve.lrs[curve.i_min]) / 10.0
