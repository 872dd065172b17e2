"""Schedules compared at an equal budget, run for run: the engine of ``wsd_vs_cosine`` and ``linear_to_zero``.

Every schedule trains the setup of :mod:`benchmarks._claims` for the same number of epochs with
the same seeds; the page gives each schedule's test loss and accuracy (mean ± std), every
seed's values, the paired differences of the claim's pairs with their verdicts, and the LR
curves that were run (read from the optimizer, step by step).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _claims
from benchmarks._common import base_parser, finish, quiet

__all__ = ["run", "summarize", "plot", "main"]


def run(schedules: dict[str, Callable[[float], Any]], epochs: int, seeds: int, quick: bool,
        peak: float = _claims.PEAK_LR) -> tuple[list[dict], dict[str, list[float]]]:
    """Train every schedule (``make(peak)`` builds its callback) with every seed; the rows and, per
    schedule, the LR of every step of seed 0."""
    rows, curves = [], {}
    t0 = time.perf_counter()
    for seed in range(seeds):
        for name, make in schedules.items():
            with tempfile.TemporaryDirectory() as tmp:
                out = _claims.train(make(peak), epochs, seed, tmp, quick=quick, peak=peak)
            if seed == 0:
                curves[name] = out["lrs"]
            rows.append({"schedule": name, "seed": seed, "epochs": epochs, "steps": out["steps"],
                         "test_loss": out["test_loss"], "test_acc": out["test_acc"], "fit_seconds": out["fit_seconds"]})
            print(f"[{time.perf_counter() - t0:6.0f}s] seed {seed} {name:16s} test loss {out['test_loss']:.4f} "
                  f"acc {out['test_acc']:.4f} ({out['steps']} steps, {out['fit_seconds']:.1f} s)", flush=True)
    return rows, curves


def summarize(rows: list[dict], title: str, claim: str, schedules: dict[str, str],
              pairs: list[tuple[str, str, str]], quick: bool, png: str, peak: float = _claims.PEAK_LR) -> str:
    """The report page: setup, the table, per-seed values, paired differences and verdicts."""
    names = list(schedules)
    seeds, epochs = len({r["seed"] for r in rows}), rows[0]["epochs"]
    steps = sorted({r["steps"] for r in rows})
    lines = [f"# {title}", ""]
    if quick:
        lines += ["**Quick mode: a smoke run over a few batches per epoch. These numbers are not evidence.**", ""]
    lines += [
        f"Claim: {claim}", "",
        f"Setup (fixed before the runs): {_claims.setup(peak)}; every schedule trains {epochs} epochs "
        f"({'/'.join(map(str, steps))} optimizer steps) with the same {seeds} seeds (0–{seeds - 1}), so the runs are "
        "paired: same initial weights, same batch order. Metrics of the final model on the 1000 test sequences.", "",
        "| schedule | what it is | test loss | test accuracy (%) |", "|---|---|---|---|",
    ]
    for name in names:
        rs = [r for r in rows if r["schedule"] == name]
        lines.append(f"| {name} | {schedules[name]} | {_claims.fmt([r['test_loss'] for r in rs], 'test_loss')} | "
                     f"{_claims.fmt([r['test_acc'] for r in rs], 'test_acc')} |")
    lines += ["", f"Mean ± standard deviation over {seeds} seeds.", "", "## Paired differences", "",
              "A − B per seed (loss: negative = A better; accuracy: positive = A better). \"A beats B\" is reproduced when "
              "the 95% t interval of the mean difference lies on A's side of 0; \"A matches B\" when it lies inside "
              f"±{_claims.MATCH_MARGIN['test_loss']:g} in loss and ±{_claims.MATCH_MARGIN['test_acc']:g} points in accuracy "
              "(margins fixed before the runs).", ""]
    lines += _claims.pair_table(rows, "schedule", pairs)
    lines += ["", "## Every seed", ""] + _claims.per_seed_table(rows, "schedule", names)
    lines += ["", f"![LR curves and test metrics]({png})", ""]
    return "\n".join(lines)


def plot(rows: list[dict], curves: dict[str, list[float]], path: Path) -> None:
    """The LR of every step (seed 0) and each seed's test loss and accuracy, joined across schedules."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, name in enumerate(names):
        axes[0].plot(curves[name], color=f"C{i}", label=name)
    axes[0].set(title="LR of every optimizer step (read from the optimizer)", xlabel="step", ylabel="LR")
    axes[0].legend(fontsize=8)
    for ax, metric in zip(axes[1:], _claims.METRICS):
        label, scale = _claims.METRICS[metric][:2]
        seeds = sorted({r["seed"] for r in rows})
        values = np.array([[scale * next(r[metric] for r in rows if r["schedule"] == n and r["seed"] == s)
                            for n in names] for s in seeds])
        for v in values:
            ax.plot(range(len(names)), v, color="0.6", lw=0.8, marker="o", ms=3)
        ax.plot(range(len(names)), values.mean(0), color="k", lw=2, marker="s", label="mean")
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set(title=f"{label}, one line per seed")
        ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None, name: str, doc: str | None, title: str, claim: str,
         schedules: dict[str, tuple[str, Callable[[float], Any]]], pairs: list[tuple[str, str, str]]) -> list[dict]:
    """The command line of an equal-budget benchmark: ``--seeds`` (full 10, quick 2), ``--epochs`` (10 / 3),
    ``--peak-lr`` (the setup's 0.01; another peak is a sensitivity check, written with ``--no-docs``)."""
    parser = base_parser(doc, f"results/{name}")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per schedule (full 10, quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="the budget in epochs (full 10, quick 3)")
    parser.add_argument("--peak-lr", type=float, default=_claims.PEAK_LR,
                        help=f"the peak LR of every schedule (default {_claims.PEAK_LR:g}, the setup's)")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 10)
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 10)
    if seeds < 2 or epochs < 2 or not args.peak_lr > 0:
        parser.error(f"need --seeds >= 2 (a paired difference needs two), --epochs >= 2 and --peak-lr > 0; "
                     f"got {seeds}, {epochs}, {args.peak_lr}")
    quiet()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, curves = run({k: make for k, (_, make) in schedules.items()}, epochs, seeds, args.quick, args.peak_lr)
    table = summarize(rows, title, claim, {k: what for k, (what, _) in schedules.items()}, pairs, args.quick, f"{name}.png",
                      args.peak_lr)
    lr_rows = [{"schedule": n, "step": k, "lr": lr} for n, lrs in curves.items() for k, lr in enumerate(lrs)]
    finish(args, name, table, {"runs.csv": rows, "lr_seed0.csv": lr_rows}, lambda path: plot(rows, curves, path), t0)
    return rows
