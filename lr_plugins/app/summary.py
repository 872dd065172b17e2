"""Sweep summary: one table and one plot for all jobs of an ``lr-train -m`` multirun.

Every job writes ``result.json`` into its folder (``lr_plugins.app.train``) as its last act, a
failed job too (``status: failed`` and its error line). At the end of the multirun,
:class:`SweepSummary` (a Hydra callback listed in ``conf/lr_train.yaml``) reads them and writes
into the sweep folder:

* ``summary.csv`` and ``summary.md``: one row per job, ``overrides`` (those that differ between
  jobs), every ``val/*`` and ``test/*`` metric (ensemble metrics of a snapshot run included) or,
  for ``lr_finder.stop=true`` jobs, every ``lr_finder/*`` pick, then ``status`` (``ok``,
  ``failed``, ``missing``) and ``error``; a corrupt ``result.json`` is a failed row, not a crash;
* ``summary.png``: every job's LR curve and validation accuracy, overlaid;

and prints the table; if any job failed, the sweep exits with status 1. :func:`summarize` does
the same for any folder, without Hydra.

Example:
    >>> from lr_plugins.app.summary import summarize
    >>> rows = summarize("multirun/2026-01-01/12-00-00-000000")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from hydra.experimental.callback import Callback

from lr_plugins._figures import figure_png, new_figure
from lr_plugins.files import write_atomic

__all__ = ["SweepSummary", "summarize", "load_results", "failed_jobs", "markdown_table", "format_metric"]

#: What every job writes last into its folder (``lr_plugins.app.train`` uses this name).
RESULT_FILE = "result.json"


def load_results(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One result per job folder under ``sweep_dir``, ordered by job folder; never raises for a bad file.

    A job folder is one with a ``result.json`` or a ``.hydra/overrides.yaml``. Each result has
    ``job``, ``overrides``, ``metrics``, ``status`` and ``error``: ``status`` is ``ok``, ``failed``
    (the job recorded its failure, or its ``result.json`` cannot be read: the error says why) or
    ``missing`` (no ``result.json``: the job never finished).
    """
    root = Path(sweep_dir)
    folders = {p.parent for p in root.glob("**/result.json")}
    folders |= {p.parent.parent for p in root.glob("**/.hydra/overrides.yaml")}
    jobs = sorted(folders, key=lambda f: [_natural(part) for part in f.relative_to(root).parts])
    return [_load_job(root, folder) for folder in jobs]


def _saved_overrides(folder: Path) -> list[str]:
    """The job's overrides as Hydra saved them, ``[]`` if unreadable."""
    try:
        saved = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(o) for o in saved] if isinstance(saved, list) else []


def _load_job(root: Path, folder: Path) -> dict[str, Any]:
    base = {"job": str(folder.relative_to(root)), "overrides": _saved_overrides(folder), "metrics": {}}
    path = folder / RESULT_FILE
    if not path.exists():
        return base | {"status": "missing", "error": f"no {RESULT_FILE}: the job did not finish"}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        metrics = data.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise ValueError(f"'metrics' is a {type(metrics).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return base | {"status": "failed", "error": f"unreadable {RESULT_FILE}: {' '.join(str(e).split())}"}
    overrides = data.get("overrides")
    return data | {
        "job": base["job"],
        "overrides": [str(o) for o in overrides] if isinstance(overrides, list) else base["overrides"],
        "metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "status": str(data.get("status", "ok")),
        "error": str(data.get("error", "")),
    }


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _labels(results: list[dict[str, Any]]) -> list[str]:
    """Each job's overrides, without those that every job shares (what the sweep varied)."""
    shared = set.intersection(*(set(r["overrides"]) for r in results)) if len(results) > 1 else set()
    return [" ".join(o for o in r["overrides"] if o not in shared) or r["job"] for r in results]


def _rows(results: list[dict[str, Any]], labels: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    keys = sorted({k for r in results for k in r["metrics"]} - {"job", "overrides", "status", "error"})
    rows = [{**r["metrics"], "job": r["job"], "overrides": label, "status": r["status"], "error": r["error"]}
            for r, label in zip(results, labels)]
    return ["job", "overrides", *keys, "status", "error"], rows


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
        return "" if v is None else format_metric(column, v) if isinstance(v, float) else str(v).replace("|", "\\|")

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
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into ``sweep_dir``; return the rows.

    Every job folder gets a row, failed ones too (``status``, ``error``); the tables are written
    before the plot, and a plot that cannot be drawn only warns.
    """
    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    if not results:
        if echo:
            print(f"No jobs (result.json) under {sweep_dir}; no summary written.")
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
    try:
        _plot([r for r in results if r["status"] == "ok"], [lb for r, lb in zip(results, labels) if r["status"] == "ok"],
              sweep_dir / "summary.png")
    except Exception as e:  # noqa: BLE001 - the tables are what matters; say why there is no plot
        warnings.warn(f"summary.png not drawn: {type(e).__name__}: {e}", stacklevel=2)
    if echo:
        print(f"\nSweep summary ({len(rows)} jobs), {sweep_dir}/summary.csv:\n")
        print(table)
        print(f"Plot: {sweep_dir / 'summary.png'}")
    return rows


def failed_jobs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of :func:`summarize` whose job did not finish well (``status`` other than ``ok``)."""
    return [r for r in rows if r.get("status", "ok") != "ok"]


class SweepSummary(Callback):
    """Hydra callback: :func:`summarize` the sweep folder when a multirun ends.

    If any job failed it prints one line per failed job and exits with status 1, after the
    summary is written (the jobs themselves record failures instead of raising, so all of them run).
    """

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        rows = summarize(config.hydra.sweep.dir)
        failed = failed_jobs(rows)
        if failed:
            print(f"lr-train: {len(failed)} of {len(rows)} jobs failed (status and error in summary.csv):", file=sys.stderr)
            for r in failed:
                print(f"  job {r['job']} ({r['overrides']}): {r['error']}", file=sys.stderr)
            raise SystemExit(1)
