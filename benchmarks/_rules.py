"""Lab-only pick rules, computed from the finder's public result fields (``lrs``, ``smoothed``, ``suggestions``).

``peak`` was a product rule until issue 14 moved it here: it overshoots into divergence on some tasks
(``docs/lr_finder.md``), so only the lab computes it now.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PEAK_FACTOR", "PEAK_CAP", "peak"]

PEAK_FACTOR = 3.0
PEAK_CAP = 1.5


def peak(lrs: Sequence[float], smoothed: Sequence[float], steepest: float, factor: float = PEAK_FACTOR,
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
