"""Helpers shared by the evidence benchmarks (time_to_target, mnist1d_anchor, ddp_scaling).

Quiet Lightning, a bare CPU Trainer, callbacks that record the per-epoch validation accuracy
and the LR of every optimizer step, order statistics, and atomic writers for the CSV / markdown
/ JSON results (through ``lr_plugins.files``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "quiet",
    "base_parser",
    "make_trainer",
    "ValAccRecorder",
    "LRTrace",
    "torch_threads",
    "spread",
    "fmt_spread",
    "write_text",
    "write_csv",
    "write_json",
    "copy_to_docs",
    "finish",
]

DOCS = Path("docs")


def quiet(threads: int | None = 1) -> None:
    """Silence Lightning's INFO logs and warnings; pin torch to ``threads`` intra-op threads."""
    warnings.filterwarnings("ignore")
    import lightning.pytorch  # noqa: F401 - its import sets its loggers to INFO; quieten them after
    import torch

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if threads is not None:
        torch.set_num_threads(threads)


def base_parser(doc: str | None, out: str) -> argparse.ArgumentParser:
    """``--quick``, ``--out`` and ``--no-docs``, the options every evidence benchmark has."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run that finishes in under 3 minutes on 2 cores")
    parser.add_argument("--out", default=out, help=f"output folder (default {out})")
    parser.add_argument("--no-docs", action="store_true", help="do not copy the full-mode table and plot into docs/")
    return parser


def make_trainer(max_epochs: int, callbacks: list, root: str | os.PathLike, **kwargs: Any):
    """A CPU Trainer with no logger, checkpoint, progress bar or sanity check."""
    import lightning.pytorch as L

    options: dict[str, Any] = dict(
        max_epochs=max_epochs, callbacks=callbacks, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=root,
    )
    options.update(kwargs)
    return L.Trainer(**options)


def _callback_base() -> type:
    from lightning.pytorch.callbacks import Callback

    return Callback


class ValAccRecorder(_callback_base()):
    """Records ``trainer.callback_metrics[key]`` after every validation run of ``fit``.

    ``on_validation_end`` runs after Lightning has reduced the epoch's metrics, so the value is
    the accuracy over the whole validation set of that epoch. ``values[e]`` belongs to epoch ``e+1``.
    """

    def __init__(self, key: str = "val/acc"):
        self.key = key
        self.values: list[float] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and self.key in trainer.callback_metrics:
            self.values.append(float(trainer.callback_metrics[self.key]))


class LRTrace(_callback_base()):
    """Records the LR of every optimizer step, read from the optimizer right before the step.

    With ``dirpath`` set, every rank writes ``lr_rank<global_rank>.json`` there at the end of
    ``fit`` (``{"rank", "world_size", "lrs", "global_step"}``), atomically. That is how a
    ``ddp_spawn`` run, whose callbacks live in the child processes, hands its curves back.
    ``train_seconds`` is the time from ``on_train_start`` to ``on_train_end`` (no process start,
    no data setup).
    """

    def __init__(self, dirpath: str | os.PathLike | None = None):
        self.dirpath = None if dirpath is None else str(dirpath)
        self.lrs: list[float] = []
        self.train_seconds = float("nan")

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def on_train_end(self, trainer, pl_module) -> None:
        self.train_seconds = time.perf_counter() - self._t0

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.dirpath is not None:
            record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                      "global_step": trainer.global_step, "train_seconds": self.train_seconds,
                      "threads": torch_threads(), "lrs": self.lrs}
            write_json(Path(self.dirpath) / f"lr_rank{trainer.global_rank}.json", record)


def torch_threads() -> int:
    """torch's intra-op thread count in this process."""
    import torch

    return torch.get_num_threads()


def spread(values: Sequence[float]) -> dict[str, float]:
    """Order statistics of ``values`` (NaN ignored): ``n``, ``median``, ``q1``, ``q3``, ``min``, ``max``, ``mean``.

    Quartiles are numpy's default (linear interpolation). All NaN when no value is finite.

    Example:
        >>> spread([1, 2, 3, 4, 100])["median"]
        3.0
    """
    a = np.asarray([v for v in values if v is not None], dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return dict(n=0, median=np.nan, q1=np.nan, q3=np.nan, min=np.nan, max=np.nan, mean=np.nan)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return dict(n=int(a.size), median=float(med), q1=float(q1), q3=float(q3), min=float(a.min()),
                max=float(a.max()), mean=float(a.mean()))


def fmt_spread(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    """``median [q1–q3] (min–max)`` of ``values * scale``, or ``–`` when there is none.

    Example:
        >>> fmt_spread([0.9, 0.95, 1.0], scale=100)
        '95.0 [92.5–97.5] (90.0–100.0)'
    """
    s = spread([v * scale for v in values if v is not None and np.isfinite(v)])
    if s["n"] == 0:
        return "–"
    f = f"{{:.{digits}f}}"
    return (f"{f.format(s['median'])} [{f.format(s['q1'])}–{f.format(s['q3'])}] "
            f"({f.format(s['min'])}–{f.format(s['max'])})")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, with the package's public ``lr_plugins.files.write_atomic``.

    A temporary file in the same folder, then ``os.replace``: a failure while writing leaves the
    previous file as it was and no temporary file behind.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "sub" / "a.txt"
        >>> write_text(p, "done").read_text()
        'done'
    """
    from lr_plugins.files import write_atomic

    return write_atomic(path, text)


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts; the union of their keys, in first-seen order) as CSV, atomically."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON, atomically."""
    return write_text(path, json.dumps(obj))


def copy_to_docs(out: Path, name: str, table: str, pngs: Sequence[str]) -> None:
    """Copy a full-mode table (as ``docs/<name>.md``) and plots (``docs/<png>``) into ``docs/``."""
    header = f"<!-- written by `python -m benchmarks.{name}`; do not edit -->\n\n"
    write_text(DOCS / f"{name}.md", header + table)
    for png in pngs:
        shutil.copyfile(out / png, DOCS / png)
    print(f"copied the table and plots to docs/{name}.md, " + ", ".join(f"docs/{p}" for p in pngs))


def finish(args: argparse.Namespace, name: str, table: str, csvs: dict[str, list[dict[str, Any]]],
           draw: Callable[[Path], None], started: float) -> None:
    """Write a benchmark's CSVs, ``summary.md`` and ``<name>.png`` into ``args.out``, print the
    table, and in full mode (not ``--quick``, not ``--no-docs``) copy the table and plot to ``docs/``."""
    out = Path(args.out)
    for filename, rows in csvs.items():
        write_csv(out / filename, rows)
    write_text(out / "summary.md", table)
    draw(out / f"{name}.png")
    print("\n" + table)
    print(f"wrote {out}/{{{', '.join([*csvs, 'summary.md', name + '.png'])}}} in {time.perf_counter() - started:.0f} s")
    if not args.quick and not args.no_docs:
        copy_to_docs(out, name, table, [f"{name}.png"])
