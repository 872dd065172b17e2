"""Sweep summary: one table and one plot for all jobs of an ``lr-train -m`` multirun.

Every finished job writes ``result.json`` into its folder (``lr_plugins.app.train``). At the end of
the multirun, :class:`SweepSummary` (a Hydra callback listed in ``conf/lr_train.yaml``) reads
them and writes into the sweep folder:

* ``summary.csv`` and ``summary.md``: one row per job, ``overrides`` (those that differ between
  jobs) then every ``val/*`` and ``test/*`` metric (ensemble metrics of a snapshot run included),
  or, for ``lr_finder.stop=true`` jobs, every ``lr_finder/*`` pick;
* ``summary.png``: every job's LR curve and validation accuracy, overlaid;

and prints the table. :func:`summarize` does the same for any folder, without Hydra.

Example:
    >>> from lr_plugins.app.summary import summarize
    >>> rows = summarize("multirun/2026-01-01/12-00-00-000000")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from lr_plugins._atomic import write_atomic
from lr_plugins._figures import figure_png, new_figure

__all__ = ["SweepSummary", "summarize", "load_results", "markdown_table", "format_metric"]


def load_results(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The ``result.json`` of every finished job under ``sweep_dir``, ordered by job folder."""
    paths = sorted(Path(sweep_dir).glob("**/result.json"), key=lambda p: _natural(p.parent.name))
    return [json.loads(p.read_text()) | {"job": str(p.parent.relative_to(sweep_dir))} for p in paths]


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _labels(results: list[dict[str, Any]]) -> list[str]:
    """Each job's overrides, without those that every job shares (what the sweep varied)."""
    shared = set.intersection(*(set(r["overrides"]) for r in results)) if len(results) > 1 else set()
    return [" ".join(o for o in r["overrides"] if o not in shared) or r["job"] for r in results]


def _rows(results: list[dict[str, Any]], labels: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    keys = sorted({k for r in results for k in r["metrics"]})
    rows = [{"job": r["job"], "overrides": label, **r["metrics"]} for r, label in zip(results, labels)]
    return ["job", "overrides", *keys], rows


def format_metric(key: str, value: float) -> str:
    """4 decimals for accuracies and losses; 4 significant digits for LRs (``lr_finder/*``), which span decades.

    Example:
        >>> format_metric("test/acc", 0.98765), format_metric("lr_finder/steepest", 3.2e-05)
        ('0.9877', '3.2e-05')
    """
    return f"{value:.4g}" if key.startswith("lr_finder/") else f"{value:.4f}"


def markdown_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """A GitHub markdown table; floats with 4 decimals (LR picks: 4 significant digits), missing values empty."""

    def fmt(column: str, v: Any) -> str:
        return "" if v is None else format_metric(column, v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(c, r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _plot(results: list[dict[str, Any]], labels: list[str], path: Path) -> None:
    fig = new_figure(figsize=(12, 4.5))
    ax_lr, ax_acc = fig.subplots(1, 2)
    for r, label in zip(results, labels):
        h = r.get("history") or {}
        if h.get("lr"):
            ax_lr.plot(h["step"], h["lr"], label=label)
        if h.get("val_acc"):
            ax_acc.plot([e + 1 for e in h["epoch"]], h["val_acc"], marker=".", label=label)
    ax_lr.set(xlabel="optimizer step", ylabel="LR", title="learning rate")
    ax_acc.set(xlabel="epoch", ylabel="val/acc", title="validation accuracy")
    for ax in (ax_lr, ax_acc):
        ax.grid(alpha=0.3)
    if ax_acc.get_legend_handles_labels()[0]:  # jobs that trained nothing (lr_finder.stop=true) draw no curve
        ax_acc.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    write_atomic(path, figure_png(fig))


def summarize(sweep_dir: str | os.PathLike, echo: bool = True) -> list[dict[str, Any]]:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into ``sweep_dir``; return the rows."""
    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    if not results:
        if echo:
            print(f"No finished jobs (result.json) under {sweep_dir}; no summary written.")
        return []
    labels = _labels(results)
    columns, rows = _rows(results, labels)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(sweep_dir / "summary.csv", buf.getvalue().encode())
    table = markdown_table(columns, rows)
    write_atomic(sweep_dir / "summary.md", table.encode())
    _plot(results, labels, sweep_dir / "summary.png")
    if echo:
        print(f"\nSweep summary ({len(rows)} jobs), {sweep_dir}/summary.csv:\n")
        print(table)
        print(f"Plot: {sweep_dir / 'summary.png'}")
    return rows


class SweepSummary(Callback):
    """Hydra callback: :func:`summarize` the sweep folder when a multirun ends."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        summarize(config.hydra.sweep.dir)
