"""Matplotlib figures without pyplot: no global backend switch, nothing to close, headless-safe.

Example:
    >>> fig = new_figure(figsize=(3, 2))
    >>> _ = fig.subplots().plot([0, 1], [1, 0])
    >>> figure_png(fig)[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

from typing import Any

__all__ = ["new_figure", "figure_png", "matplotlib_missing"]

INSTALL = "matplotlib is not installed (it is optional: pip install 'lr-plugins[plot]')"


def matplotlib_missing() -> str | None:
    """``None`` when matplotlib can be imported, else a one-line message that says how to get it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return INSTALL
    return None


def new_figure(**kwargs: Any) -> Any:
    """A ``matplotlib.figure.Figure`` (``kwargs`` as for ``Figure``), not registered with pyplot.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (the message says how to install it).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ModuleNotFoundError(f"{INSTALL}; it is needed to draw a figure.") from err

    return Figure(**kwargs)


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
