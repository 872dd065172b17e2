"""The figure of an LR range test: loss against LR (log axis), raw and smoothed, picks marked."""

from __future__ import annotations

from typing import Any

from lr_plugins._figures import new_figure
from lr_plugins.finder.curve import start_level
from lr_plugins.finder.rules import RULES

__all__ = ["plot_result"]


def plot_result(result: Any, ax: Any = None) -> Any:
    """Draw ``result`` (an :class:`~lr_plugins.finder.LRFinderResult`) and return the figure.

    Example:
        >>> fig = finder.result.plot()  # doctest: +SKIP
    """
    if ax is None:
        fig = new_figure(figsize=(6.4, 4.2))  # no pyplot: works headless, leaves the backend alone
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    import numpy as np

    lrs, raw, smoothed = (np.asarray(v, dtype=float) for v in (result.lrs, result.losses, result.smoothed))
    ax.plot(lrs, raw, color="0.7", lw=1, label="loss (raw)")
    ax.plot(lrs, smoothed, color="tab:blue", lw=2, label="loss (smoothed, zero-phase)")
    for rule, lr in result.suggestions.items():
        if not np.isfinite(lr) or not len(lrs):
            continue
        marker, color = (RULES[rule].marker, RULES[rule].color) if rule in RULES else ("x", "black")
        y = float(np.interp(np.log10(lr), np.log10(lrs), smoothed))
        chosen = " (pick)" if rule == result.rule else ""
        ax.plot([lr], [y], marker=marker, color=color, ms=9, ls="none", label=f"{rule}{chosen}: {lr:.3g}")
    if result.scale != 1.0 and np.isfinite(result.suggestion):
        ax.axvline(result.suggestion, color="black", ls="--", lw=1,
                   label=f"applied: {result.rule} x {result.scale:g} = {result.suggestion:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    if len(smoothed):
        lo, hi = float(np.min(smoothed)), max(start_level(smoothed), float(np.min(smoothed)))
        top = hi + 0.5 * max(hi - lo, 1e-3 * abs(hi) + 1e-12)
        ax.set_ylim(lo - 0.1 * (top - lo), top)
    ax.set_title(f"LR range test: {len(lrs)} steps, {result.stop_reason}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
