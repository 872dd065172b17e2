"""Matplotlib figures without pyplot: no global backend switch, nothing to close, headless-safe.

Example:
    >>> fig = new_figure(figsize=(3, 2))
    >>> _ = fig.subplots().plot([0, 1], [1, 0])
    >>> figure_png(fig)[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

from typing import Any

__all__ = ["new_figure", "figure_png"]


def new_figure(**kwargs: Any) -> Any:
    """A ``matplotlib.figure.Figure`` (``kwargs`` as for ``Figure``), not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
