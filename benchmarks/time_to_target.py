"""Time to target accuracy on MNIST-1D: SGDR vs WarmupCosine vs a step schedule vs a constant LR.

The experiment behind the claim that cosine annealing with restarts reaches a target accuracy
faster, and with less spread, than a hand-tuned step schedule (CIFAR-10 / ResNet-20, 20 runs
each), at a scale two CPU cores can run: MNIST-1D (4000 train sequences, 400 of them held out
for validation, 1000 test), a small residual 1D CNN, SGD with Nesterov momentum.

Every run (schedule x seed) uses the same budget of ``E`` epochs and the same optimizer
(SGD, peak LR 0.1, momentum 0.9, weight decay 5e-4, batch 64); a seed fixes the weight
initialisation, the validation split and the batch order, so the schedules are compared on
paired runs. The schedules:

* ``SGDR``: ``SGDR(cycle_length=E/15, cycle_mult=2)``: four cycles as in Loshchilov & Hutter's
  T_0=10, T_mult=2 over 150 epochs, scaled to the budget (E=30: restarts after 2, 6, 14 epochs,
  the last cycle ends at 30);
* ``WarmupCosine``: one cosine decay over the budget after a 1-epoch linear warmup;
* ``Step``: x0.1 at 50% and 75% of the budget (``StepDecay(milestones=[E/2, 3E/4])``);
* ``Constant``: the peak LR throughout.

Reported per schedule: the epochs to reach each target validation accuracy (fixed before the
runs: 95%, which every schedule reaches, and a stricter 98%; the first epoch whose validation
accuracy is at least the target, runs that never get there counted separately), and the final
test accuracy (the model at the end of the budget), as median, interquartile range and min–max
over the seeds.

Run ``python -m benchmarks.time_to_target`` (full: 10 seeds, 30 epochs) or ``--quick``
(2 seeds, 15 epochs). Writes ``runs.csv``, ``curves.csv``, ``summary.md`` and
``time_to_target.png`` into ``results/time_to_target/``; the full mode also copies the table
and the plot into ``docs/``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import (
    LRTrace,
    ValAccRecorder,
    base_parser,
    finish,
    fmt_spread,
    make_trainer,
    quiet,
    spread,
)

__all__ = ["SCHEDULES", "make_schedule", "epochs_to_target", "run_one", "summarize", "paired", "plot", "main"]

SCHEDULES = ("SGDR", "WarmupCosine", "Step", "Constant")
PEAK_LR = 0.1


def make_schedule(name: str, epochs: int):
    """The schedule callback ``name`` for a budget of ``epochs`` epochs (peak = the optimizer's LR).

    Example:
        >>> make_schedule("SGDR", 30).cycle_ends(30)  # the last epoch (0-based) of each cycle
        [1, 5, 13, 29]
    """
    from lr_plugins import SGDR, Constant, StepDecay, WarmupCosine

    if name == "SGDR":
        return SGDR(cycle_length=epochs / 15, cycle_mult=2.0)
    if name == "WarmupCosine":
        return WarmupCosine(warmup=1)
    if name == "Step":
        return StepDecay(milestones=[epochs / 2, 3 * epochs / 4], gamma=0.1)
    if name == "Constant":
        return Constant()
    raise ValueError(f"name={name!r} is not allowed: name must be one of {SCHEDULES}.")


def label(name: str, epochs: int) -> str:
    """A table label that says what the schedule is for this budget."""
    return {
        "SGDR": f"SGDR (T_0={epochs / 15:g}, T_mult=2)",
        "WarmupCosine": "WarmupCosine (warmup 1)",
        "Step": f"Step x0.1 at {epochs / 2:g}, {3 * epochs / 4:g}",
        "Constant": "Constant",
    }[name]


def epochs_to_target(val_accs: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy is at least ``target``, else None.

    Example:
        >>> epochs_to_target([0.5, 0.93, 0.96, 0.94], 0.95)
        3
    """
    for epoch, acc in enumerate(val_accs, start=1):
        if acc >= target - 1e-9:
            return epoch
    return None


def run_one(schedule: str, seed: int, epochs: int, channels: int, blocks: int) -> tuple[dict, list[float], list[float]]:
    """Train one run; returns its row, the validation accuracy of every epoch and the LR of every step."""
    import lightning.pytorch as L

    from lr_plugins.app.data import MNIST1DDataModule
    from lr_plugins.app.models import CNN1D, Classifier

    L.seed_everything(seed, verbose=False)
    module = Classifier(CNN1D(channels=channels, blocks=blocks), lr=PEAK_LR, momentum=0.9, weight_decay=5e-4)
    dm = MNIST1DDataModule(batch_size=64, seed=seed)
    val, lrs = ValAccRecorder(), LRTrace()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(epochs, [make_schedule(schedule, epochs), val, lrs], tmp)
        t0 = time.perf_counter()
        trainer.fit(module, dm)
        seconds = time.perf_counter() - t0
        (res,) = trainer.test(module, dm, verbose=False)
    row = {"schedule": schedule, "seed": seed, "epochs": epochs, "fit_seconds": round(seconds, 2),
           "final_val_acc": val.values[-1], "best_val_acc": max(val.values), "test_acc": res["test/acc"]}
    return row, val.values, lrs.lrs


def _key(target: float) -> str:
    return f"epochs_to_{100 * target:g}"


def summarize(rows: list[dict], targets: list[float], epochs: int, model: str) -> str:
    """The markdown table: epochs to each target and final test accuracy per schedule over seeds."""
    seeds = len({r["seed"] for r in rows})
    pct = [f"{100 * t:g}%" for t in targets]
    lines = [
        f"MNIST-1D, {model}, SGD (peak LR {PEAK_LR}, Nesterov momentum 0.9, weight decay 5e-4, batch 64), "
        f"budget {epochs} epochs, {seeds} seeds per schedule (paired: the same seeds for every schedule). "
        f"Targets (fixed before the runs): validation accuracy >= {' and >= '.join(pct)} "
        "(400 held-out training sequences). Cells: median [interquartile range] (min–max); "
        "epochs to a target over the runs that reached it.",
        "",
        "| schedule | " + " | ".join(f"reached {p} | epochs to {p}" for p in pct)
        + " | final test accuracy (%) | best val accuracy (%) | fit time (s) |",
        "|---|" + "---|---|" * len(targets) + "---|---|---|",
    ]
    for name in dict.fromkeys(r["schedule"] for r in rows):
        rs = [r for r in rows if r["schedule"] == name]
        cells = []
        for t in targets:
            reached = [r[_key(t)] for r in rs if r[_key(t)] != ""]
            cells += [f"{len(reached)}/{len(rs)}", fmt_spread(reached, digits=1)]
        lines.append(
            f"| {label(name, epochs)} | " + " | ".join(cells) + " | "
            f"{fmt_spread([r['test_acc'] for r in rs], 100, 2)} | {fmt_spread([r['best_val_acc'] for r in rs], 100, 2)} | "
            f"{spread([r['fit_seconds'] for r in rs])['median']:.1f} |"
        )
    lines.append("")
    lines += paired(rows, targets)
    return "\n".join(lines)


def paired(rows: list[dict], targets: list[float], reference: str = "Step") -> list[str]:
    """Per seed, each schedule against ``reference``: seeds where it reached a target earlier /
    at the same epoch / later (never reaching counts as later than any epoch)."""
    ref = {r["seed"]: r for r in rows if r["schedule"] == reference}
    if not ref:
        return []
    lines = [f"Paired by seed, against {reference}: seeds where the schedule reached the target "
             "earlier / at the same epoch / later (not reaching = later).", ""]
    for t in targets:
        cells = []
        for name in dict.fromkeys(r["schedule"] for r in rows):
            if name == reference:
                continue
            counts = [0, 0, 0]
            for r in rows:
                if r["schedule"] == name and r["seed"] in ref:
                    a, b = (math.inf if x == "" else x for x in (r[_key(t)], ref[r["seed"]][_key(t)]))
                    counts[0 if a < b else 1 if a == b else 2] += 1
            cells.append(f"{name} {'/'.join(map(str, counts))}")
        lines.append(f"- {100 * t:g}%: " + ", ".join(cells))
    lines.append("")
    return lines


def _box(ax, data: list[list[float]], names: list[str]) -> None:
    ax.boxplot([d if d else [np.nan] for d in data], whis=(0, 100))
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.linspace(-0.12, 0.12, len(d)), d, s=10, alpha=0.6, zorder=3, color=f"C{i - 1}")
    ax.set_xticks(range(1, len(names) + 1), names)


def plot(rows: list[dict], curves: list[dict], targets: list[float], epochs: int, path: Path) -> None:
    """Box plots of epochs to each target and of final test accuracy, and the median validation curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["schedule"] for r in rows))
    panels = len(targets) + 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.4))
    for ax, t in zip(axes, targets):
        data = [[r[_key(t)] for r in rows if r["schedule"] == n and r[_key(t)] != ""] for n in names]
        _box(ax, data, names)
        for i, (n, d) in enumerate(zip(names, data), start=1):
            missing = sum(r["schedule"] == n for r in rows) - len(d)
            if missing:
                ax.annotate(f"{missing} not\nreached", (i, epochs + 0.5), ha="center", va="bottom", fontsize=8, color="C3")
        ax.set(title=f"epochs to {100 * t:g}% validation accuracy", ylabel="epoch", ylim=(0, epochs + 4))
    ax = axes[len(targets)]
    _box(ax, [[100 * r["test_acc"] for r in rows if r["schedule"] == n] for n in names], names)
    ax.set(title=f"test accuracy after {epochs} epochs", ylabel="test accuracy (%)")
    ax = axes[-1]
    for i, n in enumerate(names):
        by_seed: dict[int, list[float]] = {}
        for c in curves:
            if c["schedule"] == n:
                by_seed.setdefault(c["seed"], []).append(c["val_acc"])
        acc = 100 * np.array(list(by_seed.values()))
        x = np.arange(1, acc.shape[1] + 1)
        ax.plot(x, np.median(acc, 0), color=f"C{i}", label=n)
        ax.fill_between(x, np.percentile(acc, 25, 0), np.percentile(acc, 75, 0), color=f"C{i}", alpha=0.15)
    for t in targets:
        ax.axhline(100 * t, color="k", ls=":", lw=1)
    ax.set(title="validation accuracy (median, IQR band)", xlabel="epoch", ylabel="val accuracy (%)",
           ylim=(max(50.0, 100 * min(targets) - 25), 100))
    ax.legend(fontsize=8, loc="lower right")
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = base_parser(__doc__, "results/time_to_target")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per schedule (full 10, quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epoch budget (full 30, quick 15)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.95, 0.98],
                        help="target validation accuracies (default 0.95 0.98)")
    parser.add_argument("--channels", type=int, default=16, help="CNN1D channels (default 16)")
    parser.add_argument("--blocks", type=int, default=2, help="CNN1D residual blocks (default 2)")
    parser.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES)
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 10)
    epochs = args.epochs if args.epochs is not None else (15 if args.quick else 30)
    if seeds < 1 or epochs < 2 or not all(0 < t <= 1 for t in args.targets):
        parser.error(f"need --seeds >= 1, --epochs >= 2 and targets in (0, 1]; got {seeds}, {epochs}, {args.targets}")
    targets = sorted(args.targets)
    quiet()
    model = f"CNN1D ({args.channels} channels, {args.blocks} residual blocks)"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"targets: validation accuracy >= {', '.join(f'{100 * t:g}%' for t in targets)}; "
          f"budget {epochs} epochs; {seeds} seeds; {model}", flush=True)
    rows, curves = [], []
    t0 = time.perf_counter()
    for seed in range(seeds):
        for name in args.schedules:
            row, accs, lrs = run_one(name, seed, epochs, args.channels, args.blocks)
            reached = [epochs_to_target(accs, t) for t in targets]
            for t, e in zip(targets, reached):
                row[_key(t)] = "" if e is None else e
            rows.append(row)
            spe = len(lrs) / epochs
            for e, acc in enumerate(accs, start=1):
                curves.append({"schedule": name, "seed": seed, "epoch": e, "val_acc": acc,
                               "lr_epoch_start": lrs[math.floor((e - 1) * spe)]})
            print(f"[{time.perf_counter() - t0:6.0f}s] seed {seed} {name:12s} epochs to targets: "
                  f"{' / '.join('-' if e is None else str(e) for e in reached):>8} test {row['test_acc']:.3f} "
                  f"({row['fit_seconds']:.1f} s)", flush=True)
    finish(args, "time_to_target", summarize(rows, targets, epochs, model), {"runs.csv": rows, "curves.csv": curves},
           lambda path: plot(rows, curves, targets, epochs, path), t0)
    return rows


if __name__ == "__main__":
    main()
