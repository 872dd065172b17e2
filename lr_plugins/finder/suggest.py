"""Every registered pick rule on a recorded curve, plus warnings for doubtful curves (pure numpy).

:func:`suggest` smooths the curve (:class:`~lr_plugins.finder.curve.LossCurve`), applies every
rule of :data:`~lr_plugins.finder.rules.RULES` and checks the curve:

* "no clear descent": the smoothed fall before the minimum, ``(s_0 - s_min) / s_0`` with ``s_0``
  the starting level, is under 5% or under three robust standard deviations of the
  batch-to-batch noise (``1.4826 MAD`` of ``loss - s``, relative to ``s_0``);
* the minimum at the right edge (the loss was still falling), the steepest point at the left edge
  (it was already falling at ``min_lr``), fewer than 10 points (the loss diverged early).

Example:
    >>> import numpy as np
    >>> lrs = np.logspace(-4, 1, 60)
    >>> losses = 2.0 - np.tanh(2 * (np.log10(lrs) + 2)) + np.where(lrs > 1, 10 * (lrs - 1), 0)
    >>> s = suggest(lrs, losses)
    >>> round(float(np.log10(s.suggestions["steepest"])), 1), s.warnings
    (-2.0, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lr_plugins.finder.curve import LossCurve, clip_ceiling, default_sigma
from lr_plugins.finder.rules import RULES

__all__ = ["RULES", "Suggestion", "suggest", "MIN_POINTS"]

MIN_POINTS = 10


@dataclass
class Suggestion:
    """What :func:`suggest` found: the picks, the smoothed curve, indices and any warnings.

    ``index`` holds, for every rule, the index of the recorded point nearest to its pick, and
    ``"minimum"``: the index of the smoothed minimum.
    """

    suggestions: dict[str, float]
    smoothed: np.ndarray
    index: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def _notes(curve: LossCurve, sigma: float, i_steep: int) -> list[str]:
    lrs, losses, s, i_min, n = curve.lrs, curve.losses, curve.smoothed, curve.i_min, len(curve.lrs)
    notes = []
    if n < MIN_POINTS:
        notes.append(
            f"only {n} points were recorded (fewer than {MIN_POINTS}): the loss diverged early. "
            f"Lower max_lr (to about {lrs[-1]:.2g}), raise diverge_threshold, or raise num_steps."
        )
    s0 = max(abs(curve.start), 1e-12)
    drop = (curve.start - s[i_min]) / s0
    resid = np.minimum(losses, clip_ceiling(losses)) - s
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) / s0
    if i_min == 0 or drop < max(0.05, 3.0 * noise):  # a fall within batch-to-batch noise is no descent
        # Raw losses here: the smoothed curve is clipped and cannot rise far above its start.
        rising = (np.median(losses[-3:]) - curve.start) / s0 > max(0.05, 3.0 * noise)
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
    return notes


def suggest(lrs: np.ndarray, losses: np.ndarray, sigma: float | None = None) -> Suggestion:
    """Apply every rule of :data:`RULES` to a recorded curve, with warnings for doubtful curves.

    Args:
        lrs: The LR of each recorded point (increasing).
        losses: The raw loss of each point (finite).
        sigma: Gaussian width of the smoother in points (``None``: ``max(1.5, points / 50)``).

    Returns:
        A :class:`Suggestion`; with no points every pick is ``nan``.
    """
    lrs = np.asarray(lrs, dtype=float)
    if len(lrs) == 0:
        nan = float("nan")
        return Suggestion({r: nan for r in RULES}, np.array([]), {},
                          ["no point was recorded: the first loss was not finite. Lower min_lr or check the model."])
    sigma = default_sigma(len(lrs)) if sigma is None else float(sigma)
    curve = LossCurve.from_losses(lrs, losses, sigma)
    picks = {name: float(r.pick(curve)) for name, r in RULES.items()}
    index = {name: curve.nearest(lr) for name, lr in picks.items()} | {"minimum": curve.i_min}
    return Suggestion(picks, curve.smoothed, index, _notes(curve, sigma, index["steepest"]))
