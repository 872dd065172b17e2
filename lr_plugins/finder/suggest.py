"""Suggestion rules of the LR range test: pure numpy, no torch, no Lightning.

The recorded curve is noisy and spiky, so every rule works on a *zero-phase* smoothing of it
(:func:`smooth`): losses above the starting level are clipped to it (the blow-up at the end can
be 1e4 times the start and would otherwise leak into the minimum), then a running median of 3
(removes isolated spikes) and a normalised Gaussian kernel centred on each point. Being symmetric, it does not shift the curve to the right the way
a causal EMA does (an EMA with beta 0.98 lags about 50 points, i.e. ~5x in LR on a 100-point
ramp from 1e-7 to 10).

Rules, all on ``s = smooth(losses)`` against ``x = log10(lr)``:

* ``steepest``: the fastest fall of the loss per decade of LR, ``ds/dx``, within the descent before
  the loss minimum (``i <= argmin s``), located robustly as the slope-weighted centre of the points
  at least 30% as steep as the steepest (:func:`steepest`);
* ``valley``: fastai's rule: the longest strictly decreasing subsequence of ``s``, and the point
  about half-way (``start + len/3 + len/6``) along it;
* ``minimum/10``: ``lr[argmin s] / 10``;
* ``peak``: ``min(3 * steepest, 1.5 * lr[argmin s])``: a peak LR for an annealed schedule
  (WarmupCosine, OneCycle, SGDR). A short range test sees only the next few steps, so its
  steepest point sits below the peak that trains best over a whole warm-up-and-anneal run (by
  0.2-0.6 decades on the design tasks of ``benchmarks/lr_finder.py``); three times the steepest
  LR corrects most of that; the cap limits how far past the loss minimum (Smith's upper bound)
  the pick may go, to half again its LR, and never past the last LR tested (:func:`peak`);
* ``basin``: ``0.675 sqrt(left(0.4) right(0.3))``, the scaled geometric middle of the part of the curve
  within 40% (left) / 30% (right) of the descent from its minimum, where ``left(f)`` / ``right(f)`` are
  the LRs at which the smoothed loss crosses ``f`` of the way back up from its minimum to its starting
  level (:func:`level_crossings`): another peak LR for annealed schedules, reading the curve's shape
  rather than one point. On a long shallow descent (batch-normalised CNNs), whose steepest point
  moves with the seed, it lies well left of the minimum; on a sharp dip, close to it (:func:`basin`).

A curve whose smoothed fall before its minimum is under 5% of the first value, or under three
robust standard deviations of the batch-to-batch noise (``1.4826 MAD`` of ``loss - s``), has "no
clear descent" and gets a warning with a hint.

Example:
    >>> import numpy as np
    >>> lrs = np.logspace(-4, 1, 60)
    >>> losses = 2.0 - np.tanh(2 * (np.log10(lrs) + 2)) + np.where(lrs > 1, 10 * (lrs - 1), 0)
    >>> s = suggest(lrs, losses)
    >>> round(float(np.log10(s.suggestions["steepest"])), 1)
    -2.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "RULES", "Suggestion", "default_sigma", "smooth", "slope", "steepest", "valley", "minimum_tenth", "peak",
    "level_crossings", "basin", "suggest",
]

RULES = ("steepest", "valley", "minimum/10", "peak", "basin")
MIN_POINTS = 10
STEEP_LEVEL = 0.3
PEAK_FACTOR = 3.0
PEAK_CAP = 1.5
BASIN_SCALE = 0.675
BASIN_LEVELS = (0.4, 0.3)


def default_sigma(n: int) -> float:
    """Default Gaussian width of :func:`smooth` in points: ``max(1.5, n / 50)``."""
    return max(1.5, n / 50.0)


def _clip(losses: np.ndarray) -> np.ndarray:
    """Losses above the starting level ``L0`` (the largest of the first 3) clipped to it."""
    return np.minimum(losses, np.max(losses[:3]))


def smooth(losses: np.ndarray, sigma: float | None = None, median: int = 3) -> np.ndarray:
    """Zero-phase smoothing: clip, running median of ``median`` points, Gaussian of width ``sigma``.

    ``c_i = min(loss_i, L0)`` with ``L0`` the largest of the first 3 losses (the starting level);
    ``m`` is the running median of ``c``; ``s_i = sum_j w_ij m_j / sum_j w_ij`` with
    ``w_ij = exp(-(i - j)^2 / (2 sigma^2))`` over the points that exist (no padding, so no edge bias
    towards a made-up value). ``sigma`` defaults to :func:`default_sigma` (2 points on a 100-point curve:
    wider kernels blur the sharp dip just before the blow-up and move the pick left).

    Example:
        >>> smooth(np.array([1.0, 1.0, 9.0, 1.0, 1.0])).round(6).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    y = np.asarray(losses, dtype=float)
    n = len(y)
    if n == 0:
        return y.copy()
    y = _clip(y)
    if median > 1 and n >= 3:
        half = min(median // 2, (n - 1) // 2)
        pad = np.pad(y, half, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1)
        y = np.median(windows, axis=1)
    sigma = default_sigma(n) if sigma is None else float(sigma)
    idx = np.arange(n)
    w = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
    return (w @ y) / w.sum(1)


def slope(lrs: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
    """``d smoothed / d log10(lr)`` by central differences (one-sided at the ends)."""
    x = np.log10(np.asarray(lrs, dtype=float))
    if len(x) < 2:
        return np.zeros_like(x)
    return np.gradient(np.asarray(smoothed, dtype=float), x)


def steepest(lrs: np.ndarray, smoothed: np.ndarray, level: float = STEEP_LEVEL) -> float:
    """Where the loss falls fastest per decade of LR, before the smoothed minimum.

    With ``d_i`` the slope against ``x_i = log10(lr_i)`` for ``i <= argmin s`` and
    ``w_i = max(0, -d_i - level * max_j(-d_j))``, the pick is ``10 ** (sum w_i x_i / sum w_i)``: the
    slope-weighted centre of the part of the descent that is at least ``level`` (30%) as steep as
    its steepest point. On a clean descent it is the most negative slope itself; on a long noisy
    one (Adam) it does not jump between two nearly equal local slope peaks from seed to seed.

    Example:
        >>> lrs = np.logspace(-5, 0, 51)
        >>> round(float(np.log10(steepest(lrs, -np.tanh(np.log10(lrs) + 3)))), 6)
        -3.0
    """
    lrs = np.asarray(lrs, dtype=float)
    end = int(np.argmin(smoothed))
    if end == 0:
        return float(lrs[0])
    d = slope(lrs, smoothed)[: end + 1]
    w = np.maximum(0.0, -d - level * max(float(-d.min()), 0.0))
    if w.sum() <= 0:
        return float(lrs[int(np.argmin(d))])
    return float(10 ** (np.sum(w * np.log10(lrs[: end + 1])) / np.sum(w)))


def valley(smoothed: np.ndarray) -> int:
    """fastai's ``valley``: a point ~half-way down the longest decreasing run of ``smoothed``.

    Example:
        >>> valley(np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 9.0]))
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


def minimum_tenth(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """The LR at the smoothed minimum, divided by 10."""
    return float(np.asarray(lrs)[int(np.argmin(smoothed))]) / 10.0


def peak(
    lrs: np.ndarray, smoothed: np.ndarray, factor: float = PEAK_FACTOR, cap: float = PEAK_CAP, lr_steep: float | None = None
) -> float:
    """A schedule peak: ``min(factor * steepest, cap * lr[argmin smoothed], lr[-1])``.

    The steepest point is where the loss falls fastest *during a short ramp*; an annealed
    schedule with warm-up trains best with a peak a few times higher (``factor``), but not far
    past the LR where the range test's loss stopped falling (at most ``cap`` times it), where
    training may diverge, and never above the last LR the test tried. A curve that never
    descends (its minimum is the first point) gets the first LR. Both constants were read off
    the six design and held-out tasks of ``benchmarks/lr_finder.py``, then checked on twelve
    fresh ones (``docs/lr_finder.md``): within 1 point of the grid best on 7 of them, but 76
    points below on one (batch 16), where 1.5x the minimum is past what a whole run survives.

    Example:
        >>> lrs = np.logspace(-5, 0, 51)
        >>> s = -np.tanh(np.log10(lrs) + 3) + np.where(lrs > 0.1, 10 * lrs, 0)
        >>> round(float(np.log10(peak(lrs, s) / steepest(lrs, s))), 3)  # 3x the steepest, below the cap
        0.477
    """
    lrs = np.asarray(lrs, dtype=float)
    i_min = int(np.argmin(smoothed))
    if i_min == 0:
        return float(lrs[0])
    lr_steep = steepest(lrs, smoothed) if lr_steep is None else lr_steep
    return min(float(factor) * lr_steep, float(cap) * float(lrs[i_min]), float(lrs[-1]))


def level_crossings(lrs: np.ndarray, smoothed: np.ndarray, fraction: float) -> tuple[float, float]:
    """The LRs where ``smoothed`` crosses ``s_min + fraction (s_0 - s_min)``, left and right of its minimum.

    ``s_0`` is the mean of the first tenth (at least 3 points) of the curve, ``s_min`` its minimum. The
    left crossing is the first point at or below that level, interpolated linearly in ``log10(lr)``
    with the point before it; the right one is the first point after the minimum at or above it (the
    last LR if the loss never climbs back that far).

    Example:
        >>> lrs = np.logspace(-4, 0, 41)
        >>> s = np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]])
        >>> # s_0 = 1.925 (the first 4 points), level = 1 + 0.5 * 0.925: x = -4 + 1.075 on the way down,
        >>> # the first point at or above it on the way up is 1.5, at x = -1.5.
        >>> [round(float(np.log10(v)), 3) for v in level_crossings(lrs, s, 0.5)]
        [-2.925, -1.5]
    """
    lrs = np.asarray(lrs, dtype=float)
    s = np.asarray(smoothed, dtype=float)
    i = int(np.argmin(s))
    x = np.log10(lrs)
    level = s[i] + fraction * (float(np.mean(s[: max(3, len(s) // 10)])) - s[i])
    j = int(np.flatnonzero(s[: i + 1] <= level)[0])
    left = x[j] if j == 0 else x[j - 1] + (level - s[j - 1]) / (s[j] - s[j - 1]) * (x[j] - x[j - 1])
    right = np.flatnonzero(s[i:] >= level)
    return float(10**left), float(lrs[i + int(right[0])] if len(right) else lrs[-1])


def basin(lrs: np.ndarray, smoothed: np.ndarray, scale: float = BASIN_SCALE, levels: tuple[float, float] = BASIN_LEVELS) -> float:
    """The basin centre: ``scale * sqrt(left(0.4) * right(0.3))`` of :func:`level_crossings`.

    The geometric middle of the part of the curve that is within 40% (left) / 30% (right) of the
    descent from its minimum, scaled by 0.675: on a long shallow descent this lies well left of the
    minimum, on a sharp dip close to it. ``scale`` and ``levels`` are the best of a search over
    346 rules on ten tasks (``benchmarks/lr_finder_rule_search.py``). A curve whose minimum is its
    first point gets the first LR.

    Example:
        >>> lrs = np.logspace(-4, 0, 41)
        >>> s = np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]])
        >>> round(float(basin(lrs, s) / np.sqrt(level_crossings(lrs, s, 0.4)[0] * level_crossings(lrs, s, 0.3)[1])), 3)
        0.675
    """
    lrs = np.asarray(lrs, dtype=float)
    if int(np.argmin(smoothed)) == 0:
        return float(lrs[0])
    left, _ = level_crossings(lrs, smoothed, levels[0])
    _, right = level_crossings(lrs, smoothed, levels[1])
    return float(scale * np.sqrt(left * right))


@dataclass
class Suggestion:
    """What :func:`suggest` found: the picks, the smoothed curve and any warnings."""

    suggestions: dict[str, float]
    smoothed: np.ndarray
    index: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def suggest(lrs: np.ndarray, losses: np.ndarray, sigma: float | None = None) -> Suggestion:
    """Apply every rule of :data:`RULES` to a recorded curve, with warnings for doubtful curves.

    Args:
        lrs: The LR of each recorded point (increasing).
        losses: The raw loss of each point (finite).
        sigma: Gaussian width of :func:`smooth` in points (``None``: :func:`default_sigma`).

    Returns:
        A :class:`Suggestion`; with no points every pick is ``nan``.
    """
    lrs = np.asarray(lrs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    n = len(lrs)
    notes: list[str] = []
    if n == 0:
        nan = float("nan")
        return Suggestion({r: nan for r in RULES}, np.array([]), {}, ["no point was recorded: the first loss was not finite. Lower min_lr or check the model."])
    sigma = default_sigma(n) if sigma is None else float(sigma)
    s = smooth(losses, sigma)
    i_min = int(np.argmin(s))
    lr_steep = steepest(lrs, s)
    i_steep = int(np.argmin(np.abs(np.log10(lrs) - np.log10(lr_steep))))
    i_valley = valley(s)
    picks = {"steepest": lr_steep, "valley": float(lrs[i_valley]), "minimum/10": minimum_tenth(lrs, s),
             "peak": peak(lrs, s, lr_steep=lr_steep), "basin": basin(lrs, s)}
    if n < MIN_POINTS:
        notes.append(
            f"only {n} points were recorded (fewer than {MIN_POINTS}): the loss diverged early. "
            f"Lower max_lr (to about {lrs[-1]:.2g}), raise diverge_threshold, or raise num_steps."
        )
    drop = (s[0] - s[i_min]) / max(abs(s[0]), 1e-12)
    resid = _clip(losses) - s
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) / max(abs(s[0]), 1e-12)
    if i_min == 0 or drop < max(0.05, 3.0 * noise):  # a fall within batch-to-batch noise is no descent
        # Raw losses here: the smoothed curve is clipped at the starting level and cannot rise above it.
        rising = (np.median(losses[-3:]) - s[0]) / max(abs(s[0]), 1e-12) > max(0.05, 3.0 * noise)
        hint = (
            f"The loss only rises: lower min_lr (e.g. to {lrs[0] / 100:.2g})"
            if rising
            else f"The loss stays flat: raise max_lr (e.g. to {lrs[-1] * 100:.2g})"
        )
        notes.append(
            f"no clear descent: the smoothed loss falls only {100 * max(drop, 0):.1f}% before its minimum at "
            f"lr={lrs[i_min]:.2g}. {hint}, or check that the model learns at all."
        )
    elif i_min >= n - 1 - max(1, n // 50):
        notes.append(
            f"the loss minimum sits at the right edge of the range (lr={lrs[i_min]:.2g}): the loss was still "
            f"falling. Raise max_lr (e.g. to {lrs[-1] * 100:.2g}) or num_steps."
        )
    edge = max(1, int(np.ceil(1.5 * sigma)))  # the smoother flattens this many edge points
    if i_min > 0 and i_steep <= edge:
        notes.append(
            f"the steepest descent is at the left edge of the range (lr={lrs[i_steep]:.2g}): the loss was "
            f"already falling at min_lr. Lower min_lr (e.g. to {lrs[0] / 100:.2g})."
        )
    return Suggestion(picks, s, {"steepest": i_steep, "valley": i_valley, "minimum": i_min}, notes)
