"""The recorded range-test curve as the pick rules see it: smoothed, on a log-LR axis.

The recorded curve is noisy and spiky, so every rule works on a *zero-phase* smoothing of it
(:func:`smooth`): losses above a ceiling (the largest of the first 3 raw losses) are clipped to
it (the blow-up at the end can be 1e4 times the start and would otherwise leak into the minimum),
then a running median of 3 removes isolated spikes and a normalised Gaussian kernel centred on
each point smooths the rest. Being symmetric, it does not shift the curve to the right the way a
causal EMA does (an EMA with beta 0.98 lags about 50 points, i.e. ~5x in LR on a 100-point ramp
from 1e-7 to 10).

The curve's *starting level* has one definition, :func:`start_level`: the mean of the first tenth
(at least 3 points) of the smoothed loss. The rules, the "no clear descent" warning and the
figure all read it from :attr:`LossCurve.start`.

Example:
    >>> import numpy as np
    >>> lrs = np.logspace(-4, 0, 41)
    >>> c = LossCurve.from_losses(lrs, 2.0 - np.tanh(2 * (np.log10(lrs) + 2)))
    >>> round(float(c.log_lrs[c.i_min]), 1), round(c.start, 3)
    (0.0, 2.998)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LossCurve", "clip_ceiling", "default_sigma", "smooth", "slope", "start_level"]


def default_sigma(n: int) -> float:
    """Default Gaussian width of :func:`smooth` in points: ``max(1.5, n / 50)``."""
    return max(1.5, n / 50.0)


def clip_ceiling(losses: np.ndarray) -> float:
    """The smoother's clip ceiling: the largest of the first 3 raw losses (bounds the blow-up)."""
    return float(np.max(losses[:3]))


def smooth(losses: np.ndarray, sigma: float | None = None, median: int = 3) -> np.ndarray:
    """Zero-phase smoothing: clip, running median of ``median`` points, Gaussian of width ``sigma``.

    ``c_i = min(loss_i, C)`` with ``C`` the largest of the first 3 losses (:func:`clip_ceiling`);
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
    y = np.minimum(y, clip_ceiling(y))
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
    """``d smoothed / d log10(lr)`` by central differences (one-sided at the ends).

    With ``x_i = log10(lr_i)``: ``d_i = (s_{i+1} - s_{i-1}) / (x_{i+1} - x_{i-1})`` inside for evenly
    spaced ``x`` (the exponential ramp; ``numpy.gradient``'s second-order formula on an uneven grid),
    ``(s_1 - s_0) / (x_1 - x_0)`` and
    ``(s_{n-1} - s_{n-2}) / (x_{n-1} - x_{n-2})`` at the ends; all zeros for fewer than 2 points.

    Example:
        >>> slope([1e-3, 1e-2, 1e-1], [3.0, 2.0, 1.0]).tolist()
        [-1.0, -1.0, -1.0]
    """
    x = np.log10(np.asarray(lrs, dtype=float))
    if len(x) < 2:
        return np.zeros_like(x)
    return np.gradient(np.asarray(smoothed, dtype=float), x)


def start_level(smoothed: np.ndarray) -> float:
    """The curve's starting level: the mean of the first tenth (at least 3 points) of ``smoothed``.

    Example:
        >>> start_level(np.array([4.0, 2.0, 3.0, 1.0, 0.0]))
        3.0
    """
    s = np.asarray(smoothed, dtype=float)
    return float(np.mean(s[: max(3, len(s) // 10)])) if len(s) else float("nan")


@dataclass(frozen=True)
class LossCurve:
    """One recorded curve, everything a pick rule reads.

    Attributes:
        lrs: The LR of each recorded point (increasing).
        losses: The raw losses.
        smoothed: :func:`smooth` of ``losses``.
        log_lrs: ``log10(lrs)``.
        start: The starting level (:func:`start_level` of ``smoothed``).
        i_min: Index of the smoothed minimum.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    log_lrs: np.ndarray
    start: float
    i_min: int

    @classmethod
    def from_losses(cls, lrs: np.ndarray, losses: np.ndarray, sigma: float | None = None) -> LossCurve:
        """Smooth ``losses`` (:func:`smooth` with ``sigma``) and build the curve."""
        lrs = np.asarray(lrs, dtype=float)
        return cls.from_smoothed(lrs, np.asarray(losses, dtype=float), smooth(losses, sigma))

    @classmethod
    def from_smoothed(cls, lrs: np.ndarray, losses: np.ndarray, smoothed: np.ndarray) -> LossCurve:
        """The curve of an already smoothed loss (``losses`` may equal ``smoothed``)."""
        lrs = np.asarray(lrs, dtype=float)
        s = np.asarray(smoothed, dtype=float)
        return cls(lrs, np.asarray(losses, dtype=float), s, np.log10(lrs), start_level(s), int(np.argmin(s)))

    def nearest(self, lr: float) -> int:
        """Index of the recorded point nearest to ``lr`` on the log axis."""
        return int(np.argmin(np.abs(self.log_lrs - np.log10(lr))))
