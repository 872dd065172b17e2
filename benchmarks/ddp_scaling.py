"""DDP scaling on CPU: the same SGDR training on 1 process and on 2 ``ddp_spawn`` processes.

Checks the claim that a schedule callback gives every DDP rank the same LR curve, the one a
single process follows, and measures what two CPU processes cost or save in wall time.

The training: MNIST-1D, ``CNN1D(channels=16, blocks=2)``, SGD (LR 0.1, Nesterov momentum 0.9,
weight decay 5e-4) with ``SGDR(cycle_length=1, cycle_mult=2)`` (cycles of 1, 2, 4, ... epochs)
over ``E`` epochs, at a global batch of 64:

* ``1 process, 1 thread`` and ``1 process, 2 threads``: batch 64;
* ``ddp_spawn, 2 processes``: ``strategy="ddp_spawn", devices=2`` on CPU (gloo), batch 32 per
  process; Lightning's DistributedSampler gives each rank half the data, so the optimizer takes
  the same number of steps per epoch as the single process, and Lightning pins each process to
  ``cores / 2`` threads.

Every rank writes the LR it read from its optimizer before every step (``lr_rank<r>.json``);
the report compares each rank's curve with the 1-process curve and with the closed form
``SGDR.preview``. Wall time is the whole ``trainer.fit`` call (for DDP: process start, gloo
setup, and the weights handed back), and the training loop alone (``on_train_start`` to
``on_train_end`` on rank 0); the median over repeats.

Run ``python -m benchmarks.ddp_scaling`` (full: 15 epochs, 3 repeats) or ``--quick``
(3 epochs, 1 repeat). Writes ``runs.csv``, ``lr_curves.csv``, ``summary.md`` and
``ddp_scaling.png`` into ``results/ddp_scaling/`` (the per-rank traces under ``traces/``); the
full mode also copies the table and the plot into ``docs/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import (
    LRTrace,
    base_parser,
    finish,
    make_trainer,
    quiet,
    spread,
)

__all__ = ["CONFIGS", "ALIASES", "run_one", "compare_curves", "summarize", "plot", "main"]

# name -> (processes, torch threads in the parent, per-process batch)
CONFIGS = {
    "1 process, 1 thread": (1, 1, 64),
    "1 process, 2 threads": (1, 2, 64),
    "ddp_spawn, 2 processes": (2, None, 32),
}
ALIASES = dict(zip(("1p1t", "1p2t", "ddp2"), CONFIGS))


def _schedule():
    from lr_plugins import SGDR

    return SGDR(cycle_length=1, cycle_mult=2.0)


def run_one(config: str, epochs: int, trace_dir: Path, seed: int = 0) -> dict:
    """Fit once in configuration ``config``; every rank writes its LR trace into ``trace_dir``."""
    import lightning.pytorch as L
    import torch

    from lr_plugins.app.data import MNIST1DDataModule
    from lr_plugins.app.models import CNN1D, Classifier

    processes, threads, batch = CONFIGS[config]
    torch.set_num_threads(threads or 1)
    L.seed_everything(seed, verbose=False)
    module = Classifier(CNN1D(channels=16, blocks=2), lr=0.1, momentum=0.9, weight_decay=5e-4)
    dm = MNIST1DDataModule(batch_size=batch, seed=seed)
    shutil.rmtree(trace_dir, ignore_errors=True)  # no stale trace from an earlier run
    trace_dir.mkdir(parents=True)
    extra = dict(devices=2, strategy="ddp_spawn") if processes > 1 else {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(epochs, [_schedule(), LRTrace(trace_dir)], tmp, **extra)
        t0 = time.perf_counter()
        trainer.fit(module, dm)
        fit_seconds = time.perf_counter() - t0
    traces = [json.loads((trace_dir / f"lr_rank{r}.json").read_text()) for r in range(processes)]
    return {
        "config": config, "processes": processes, "batch_per_process": batch, "epochs": epochs,
        "fit_seconds": round(fit_seconds, 2), "train_seconds": round(traces[0]["train_seconds"], 2),
        "threads_per_process": traces[0]["threads"], "steps": traces[0]["global_step"],
        "val_acc": float(trainer.callback_metrics["val/acc"]), "traces": traces,
    }


def compare_curves(rows: list[dict], epochs: int) -> list[dict]:
    """Each rank's LR curve against the 1-process curve and the closed form ``SGDR.preview``."""
    reference = next(r for r in rows if r["processes"] == 1)["traces"][0]["lrs"]
    steps = len(reference)
    closed = _schedule().preview(steps, steps_per_epoch=steps / epochs)
    closed = 0.1 * np.asarray(closed)  # preview has peak 1.0 when max_lr is None; the optimizer's lr is 0.1
    out = []
    for r in rows:
        for t in r["traces"]:
            lrs = np.asarray(t["lrs"])
            same_len = len(lrs) == steps
            out.append({
                "config": r["config"], "rank": t["rank"], "steps": len(lrs),
                "max_abs_diff_vs_1_process": float(np.max(np.abs(lrs - reference))) if same_len else float("nan"),
                "identical_to_1_process": bool(same_len and np.array_equal(lrs, reference)),
                "max_abs_diff_vs_closed_form": float(np.max(np.abs(lrs - closed))) if same_len else float("nan"),
            })
    return out


def summarize(rows: list[dict], checks: list[dict], epochs: int, cores: int) -> str:
    """Two markdown tables: LR curve agreement per rank, and wall time per configuration."""
    lines = [
        f"MNIST-1D, CNN1D (16 channels, 2 blocks), SGDR(cycle_length=1, cycle_mult=2), {epochs} epochs, "
        f"global batch 64, {cores} CPU cores; 1-minute load average before the runs "
        f"{min(r['load_before'] for r in rows):.1f}–{max(r['load_before'] for r in rows):.1f} "
        "(other work shared the cores: timings are indicative).",
        "",
        "**LR curves** (the LR each rank's optimizer held before every step; one trace per rank and repeat):",
        "",
        "| configuration | rank | steps | identical to the 1-process curve | max abs diff vs 1 process "
        "| max abs diff vs SGDR.preview |",
        "|---|---|---|---|---|---|",
    ]
    for config, rank in dict.fromkeys((c["config"], c["rank"]) for c in checks):  # one row per rank
        same = [d for d in checks if (d["config"], d["rank"]) == (config, rank)]
        c = same[0]
        lines.append(
            f"| {c['config']} | {c['rank']} | {c['steps']} | "
            f"{'yes' if all(d['identical_to_1_process'] for d in same) else 'no'} ({len(same)} traces) | "
            f"{max(d['max_abs_diff_vs_1_process'] for d in same):.1e} | {max(d['max_abs_diff_vs_closed_form'] for d in same):.1e} |"
        )
    base = spread([r["fit_seconds"] for r in rows if r["config"] == "1 process, 1 thread"])["median"]
    base_train = spread([r["train_seconds"] for r in rows if r["config"] == "1 process, 1 thread"])["median"]
    lines += [
        "",
        "**Wall time** (median over repeats; ratio = time / time of 1 process with 1 thread; "
        "val accuracy of the final model on the 400 validation sequences):",
        "",
        "| configuration | threads per process | repeats | fit wall time (s) | ratio | training loop (s) | ratio "
        "| val accuracy (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config in dict.fromkeys(r["config"] for r in rows):
        rs = [r for r in rows if r["config"] == config]
        fit = spread([r["fit_seconds"] for r in rs])["median"]
        train = spread([r["train_seconds"] for r in rs])["median"]
        acc = spread([100 * r["val_acc"] for r in rs])["median"]
        lines.append(
            f"| {config} | {rs[0]['threads_per_process']} | {len(rs)} | {fit:.1f} | {fit / base:.2f} | "
            f"{train:.1f} | {train / base_train:.2f} | {acc:.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], epochs: int, path: Path) -> None:
    """The LR curve of every rank over the 1-process curve, and the wall times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
    ref = next(r for r in rows if r["processes"] == 1)
    steps = len(ref["traces"][0]["lrs"])
    x = np.arange(steps) / (steps / epochs)
    ax.plot(x, ref["traces"][0]["lrs"], color="k", lw=3, alpha=0.35, label="1 process")
    ddp = next((r for r in rows if r["processes"] > 1), None)
    if ddp is not None:
        for t, (style, color) in zip(ddp["traces"], [("--", "C0"), (":", "C3")]):
            ax.plot(np.arange(len(t["lrs"])) / (steps / epochs), t["lrs"], style, color=color, lw=1.5,
                    label=f"ddp_spawn rank {t['rank']}")
    ax.set(title="LR before every optimizer step", xlabel="epoch", ylabel="LR")
    ax.legend(fontsize=8)
    configs = list(dict.fromkeys(r["config"] for r in rows))
    for key, offset, name in [("fit_seconds", -0.2, "whole fit"), ("train_seconds", 0.2, "training loop")]:
        med = [spread([r[key] for r in rows if r["config"] == c])["median"] for c in configs]
        bx.bar(np.arange(len(configs)) + offset, med, width=0.4, label=name)
    bx.set_xticks(range(len(configs)), [c.replace(", ", "\n") for c in configs], fontsize=8)
    bx.set(title="wall time (median)", ylabel="seconds")
    bx.legend(fontsize=8)
    for a in (ax, bx):
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = base_parser(__doc__, "results/ddp_scaling")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (full 15, quick 3)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per configuration (full 3, quick 1)")
    parser.add_argument("--configs", nargs="+", default=list(ALIASES), choices=list(ALIASES),
                        help="configurations: 1p1t (1 process, 1 thread), 1p2t (1 process, 2 threads), "
                        "ddp2 (ddp_spawn, 2 processes); 1p1t is always run (the reference)")
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 15)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if epochs < 1 or repeats < 1:
        parser.error(f"need --epochs >= 1 and --repeats >= 1, got {epochs}, {repeats}")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # for the spawned processes too
    quiet()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    rows = []
    t0 = time.perf_counter()
    for rep in range(repeats):
        for config in [c for a, c in ALIASES.items() if a in {"1p1t", *args.configs}]:
            load = os.getloadavg()[0]
            row = run_one(config, epochs, out / "traces" / f"{re.sub('[^a-z0-9]+', '_', config)}_{rep}")
            row["repeat"] = rep
            row["load_before"] = round(load, 2)
            rows.append(row)
            print(f"[{time.perf_counter() - t0:6.0f}s] {config}: fit {row['fit_seconds']:.1f} s, "
                  f"training loop {row['train_seconds']:.1f} s, val acc {row['val_acc']:.3f}", flush=True)
    checks = compare_curves(rows, epochs)
    runs = [{k: v for k, v in r.items() if k != "traces"} for r in rows]
    curves = [{"config": r["config"], "repeat": r["repeat"], "rank": t["rank"], "step": i, "lr": lr}
              for r in rows for t in r["traces"] for i, lr in enumerate(t["lrs"])]
    finish(args, "ddp_scaling", summarize(rows, checks, epochs, cores),
           {"runs.csv": runs, "lr_checks.csv": checks, "lr_curves.csv": curves}, lambda path: plot(rows, epochs, path), t0)
    return rows


if __name__ == "__main__":
    main()
