"""Lab-only pick rules, computed from the finder's public result fields (``lrs``, ``losses``, ``smoothed``,
``suggestions``).

The product's rules (``steepest``, ``valley``) are read from ``result.suggestions``; the rules the
benchmarks compare beside them live here, because the lab uses only the package's public API.
``peak`` was a product rule until issue 14 moved it here (it overshoots into divergence on some
tasks, ``docs/lr_finder.md``); ``basin`` followed when the pre-registered fresh-task test
(``docs/research/lr-finder-schedule.md``) kept it within 2 points of the grid best on only 3/5 tasks
annealed and 2/5 constant. With ``x = log10(lr)`` and ``s`` the product's smoothed loss:

* ``minimum``: ``lr[argmin s]`` (Smith's upper bound); ``minimum/10``: a tenth of it;
* ``peak``: ``min(3 steepest, 1.5 minimum, lr[-1])`` (:func:`peak`);
* ``steepest-end``: the larger-LR end of the steep descent, the last point right of the most negative
  slope ``ds/dx`` that is still at least 30% as steep, before the minimum (:func:`steepest_end`);
* ``steepest-wide``: the most negative slope of the raw losses smoothed 2.5x wider, sigma = n/20
  (the finder's public ``smooth`` with another width, :func:`steepest_wide`);
* ``midpoint``: ``sqrt(steepest * minimum)``;
* ``basin``: ``0.675 sqrt(left(0.4) right(0.3))``, the scaled geometric middle of the part of the curve
  within 40% (left) / 30% (right) of the descent from its minimum (:func:`basin`; constants fitted on
  the benchmark's first ten tasks);
* ``adaptive``: ``basin`` when the minimum is more than 0.6 decades right of ``steepest``, else ``peak``.

Example:
    >>> from types import SimpleNamespace
    >>> lrs = np.logspace(-4, 0, 41)
    >>> s = np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]])  # minimum at 1e-2
    >>> r = SimpleNamespace(lrs=lrs, losses=s, smoothed=s, suggestions={"steepest": 1e-3, "valley": 1e-3})
    >>> p = rule_picks(r)
    >>> p["minimum"], p["peak"], p["adaptive"] == p["basin"]
    (0.01, 0.003, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lr_plugins.finder import slope, smooth, start_level

__all__ = ["PRODUCT_RULES", "LAB_RULES", "RULES", "PEAK_FACTOR", "PEAK_CAP", "STEEP_LEVEL", "peak",
           "steepest_end", "steepest_wide", "level_crossings", "basin", "BASIN_SCALE", "BASIN_LEVELS", "rule_picks"]

#: A curve: a list of floats or a numpy array.
Floats = Sequence[float] | np.ndarray

PRODUCT_RULES = ("steepest", "valley")
LAB_RULES = ("minimum/10", "peak", "adaptive", "minimum", "steepest-end", "steepest-wide", "midpoint", "basin")
RULES = ("steepest", "valley", "minimum/10", "peak", "adaptive", "minimum", "steepest-end", "steepest-wide", "midpoint",
         "basin")
PEAK_FACTOR = 3.0
PEAK_CAP = 1.5
STEEP_LEVEL = 0.3
BASIN_SCALE = 0.675
BASIN_LEVELS = (0.4, 0.3)


def peak(lrs: Floats, smoothed: Floats, steepest: float, factor: float = PEAK_FACTOR,
         cap: float = PEAK_CAP) -> float:
    """``min(factor * steepest, cap * lr[argmin smoothed], lr[-1])``; ``lr[0]`` when the minimum is the first point.

    Args:
        lrs: The recorded LRs (``result.lrs``).
        smoothed: The smoothed loss the product's rules read (``result.smoothed``).
        steepest: The product's steepest-slope pick (``result.suggestions["steepest"]``).
        factor: Multiple of the steepest LR (3: read off the benchmark's six design / held-out tasks).
        cap: Largest multiple of the LR at the smoothed minimum (1.5).

    Example:
        >>> lrs = np.logspace(-4, 0, 41)
        >>> s = np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]])  # minimum at 1e-2
        >>> peak(lrs, s, steepest=1e-3), peak(lrs, s, steepest=8e-3)  # 3 x steepest; capped at 1.5 x 1e-2
        (0.003, 0.015)
    """
    lrs = np.asarray(lrs, dtype=float)
    i_min = int(np.argmin(np.asarray(smoothed, dtype=float)))
    if i_min == 0:
        return float(lrs[0])
    return float(min(factor * float(steepest), cap * float(lrs[i_min]), float(lrs[-1])))


def steepest_end(lrs: Floats, smoothed: Floats, level: float = STEEP_LEVEL) -> float:
    """The last LR right of the most negative slope, before the minimum, still at least ``level`` as steep.

    Example:
        >>> lrs = np.logspace(-3, 0, 4)
        >>> steepest_end(lrs, [4.0, 2.0, 1.5, 1.0])  # slopes -2, -1.25, -0.5, -0.5: only -1.25 is still >= 0.3 x 2
        0.01
    """
    lrs = np.asarray(lrs, dtype=float)
    end = int(np.argmin(np.asarray(smoothed, dtype=float)))
    d = slope(lrs, smoothed)[: end + 1]
    j = int(np.argmin(d))
    while j + 1 <= end and -d[j + 1] >= level * max(float(-d.min()), 0.0):
        j += 1
    return float(lrs[j])


def steepest_wide(lrs: Floats, losses: Floats) -> float:
    """The most negative slope, before the minimum, of the raw losses smoothed with sigma = max(1.5, n / 20).

    Example:
        >>> lrs = np.logspace(-4, 0, 81)
        >>> round(float(np.log10(steepest_wide(lrs, -np.tanh(2 * (np.log10(lrs) + 2))))), 2)
        -2.0
    """
    lrs = np.asarray(lrs, dtype=float)
    wide = smooth(losses, sigma=max(1.5, len(lrs) / 20.0))
    return float(lrs[int(np.argmin(slope(lrs, wide)[: int(np.argmin(wide)) + 1]))])


def level_crossings(lrs: Floats, smoothed: Floats, fraction: float) -> tuple[float, float]:
    """The LRs where ``smoothed`` crosses ``s_min + fraction (s_0 - s_min)``, left and right of its minimum.

    ``s_0`` is the finder's starting level (``lr_plugins.finder.start_level``: the mean of the first
    tenth, at least 3 points, of the curve). Left: the first point at
    or below the level, interpolated linearly in ``log10(lr)`` with the point before it; right: the
    first point after the minimum at or above it (the last LR if the loss never climbs back that far).
    A curve whose minimum is its first point gives ``(lr[0], lr[0])``.

    Example:
        >>> lrs = np.logspace(-4, 0, 41)
        >>> s = np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]])
        >>> [round(float(np.log10(v)), 3) for v in level_crossings(lrs, s, 0.5)]
        [-2.925, -1.5]
    """
    lrs = np.asarray(lrs, dtype=float)
    s = np.asarray(smoothed, dtype=float)
    i = int(np.argmin(s))
    if i == 0:
        return float(lrs[0]), float(lrs[0])
    x = np.log10(lrs)
    level = s[i] + fraction * (start_level(s) - s[i])
    j = int(np.flatnonzero(s[: i + 1] <= level)[0])
    left = x[j] if j == 0 else x[j - 1] + (level - s[j - 1]) / (s[j] - s[j - 1]) * (x[j] - x[j - 1])
    right = np.flatnonzero(s[i:] >= level)
    return float(10**left), float(lrs[i + int(right[0])] if len(right) else lrs[-1])


def basin(lrs: Floats, smoothed: Floats, scale: float = BASIN_SCALE,
          levels: tuple[float, float] = BASIN_LEVELS) -> float:
    """``scale * sqrt(left(levels[0]) * right(levels[1]))`` (:func:`level_crossings`); ``lr[0]`` when the minimum is the first point.

    The scaled geometric middle of the part of the curve within 40% (left) / 30% (right) of the
    descent from its minimum: well left of the minimum on a long shallow descent, close to it on a
    sharp dip. ``scale`` (0.675) and ``levels`` were fitted on the benchmark's first ten tasks; it was
    the product's ``basin`` rule until the fresh-task test moved it here (same formula, same numbers:
    ``benchmarks/tests/test_rules.py`` checks it against the product's recorded picks).

    Example:
        >>> lrs = np.logspace(-4, 0, 41)
        >>> s = np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]])  # minimum at 1e-2
        >>> left, right = level_crossings(lrs, s, 0.4)[0], level_crossings(lrs, s, 0.3)[1]
        >>> round(basin(lrs, s) / float(np.sqrt(left * right)), 6), bool(basin(lrs, np.linspace(1.0, 3.0, 41)) == lrs[0])
        (0.675, True)
    """
    lrs = np.asarray(lrs, dtype=float)
    if int(np.argmin(np.asarray(smoothed, dtype=float))) == 0:
        return float(lrs[0])
    left, _ = level_crossings(lrs, smoothed, levels[0])
    _, right = level_crossings(lrs, smoothed, levels[1])
    return float(scale * np.sqrt(left * right))


def rule_picks(result: Any) -> dict[str, float]:
    """Every rule of :data:`RULES` on one finder result: the product's from ``result.suggestions``, the lab's computed.

    ``result`` needs the public fields ``lrs``, ``losses``, ``smoothed`` and ``suggestions`` (a
    :class:`lr_plugins.finder.LRFinderResult` has them). See the module docstring for the rules.
    """
    lrs = np.asarray(result.lrs, dtype=float)
    s = np.asarray(result.smoothed, dtype=float)
    picks = {rule: float(result.suggestions[rule]) for rule in PRODUCT_RULES}
    picks["minimum"] = float(lrs[int(np.argmin(s))])
    picks["minimum/10"] = picks["minimum"] / 10.0
    picks["peak"] = peak(lrs, s, picks["steepest"])
    picks["steepest-end"] = steepest_end(lrs, s)
    picks["steepest-wide"] = steepest_wide(lrs, result.losses)
    picks["midpoint"] = float(np.sqrt(picks["steepest"] * picks["minimum"]))
    picks["basin"] = basin(lrs, s)
    picks["adaptive"] = picks["basin"] if picks["minimum"] > 10**0.6 * picks["steepest"] else picks["peak"]
    return {rule: picks[rule] for rule in RULES}
