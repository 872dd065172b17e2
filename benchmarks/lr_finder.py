"""LR finder benchmark: lr-plugins' LRFinder against Lightning's ``Tuner.lr_find``.

Eighteen tasks on embedded data (WarmupCosine with half an epoch of warmup; batch 64 unless noted):

* design tasks (the package's rules were written with these in view):
  ``cnn_adam``: MNIST-1D, CNN1D (16 channels, 2 blocks), Adam, 4 epochs;
  ``mlp_sgd``: MNIST-1D, MLP 2x256, SGD (Nesterov momentum 0.9), 8 epochs;
  ``digits_sgd``: scikit-learn digits, MLP 2x256, SGD (Nesterov momentum 0.9), 8 epochs;
* held out from ``steepest`` / ``valley`` / ``minimum/10`` (added after those were written):
  ``cnn_sgd``, ``mlp_adam``, ``digits_adam``, the same nets with the other optimizer; ``peak``'s
  two constants were read off these six tasks, so they are not held out from ``peak``;
* fresh, defined after every package rule of the time was fixed (later among the ten tasks the
  ``basin`` search was run on):
  ``cnn32_sgd`` (MNIST-1D, CNN1D 32 channels x 3 blocks, SGD, 3 epochs), ``mlp3_adamw``
  (MNIST-1D, MLP 3x128, AdamW with weight decay 0.01, batch 128, 10 epochs), ``digits_cnn_adam``
  (digits as a length-64 sequence, CNN1D 16 x 2, Adam, batch 32, 4 epochs), ``digits_mlp1_sgd``
  (digits, MLP 1x64, SGD, batch 32, 5 epochs);
* fresh 2, defined and committed before the ``basin`` candidate was searched for on the ten tasks
  above: ``cnn8_adamw`` (MNIST-1D, CNN1D 8 x 2, AdamW with weight decay 0.05, batch 128, 5 epochs),
  ``mlp512_dropout_sgd`` (MNIST-1D, MLP 2x512 with dropout 0.2, SGD, batch 32, 6 epochs),
  ``digits_mlp3_adam`` (digits, MLP 3x128, Adam, 6 epochs), ``cnn24_k3_sgd`` (MNIST-1D, CNN1D 24 x 2
  with kernel 3, SGD, batch 128, 5 epochs);
* fresh 3, defined and committed before ``adaptive`` was written (its switch was chosen looking at
  all fourteen tasks above): ``cnn16x3_adam_b32`` (MNIST-1D, CNN1D 16 x 3, Adam, batch 32, 3 epochs),
  ``mlp384_adamw`` (MNIST-1D, MLP 2x384, AdamW with weight decay 0.1, 6 epochs), ``digits_cnn8x3_sgd``
  (digits, CNN1D 8 x 3, SGD, 6 epochs), ``digits_mlp32_sgd_b16`` (digits, MLP 2x32, SGD, batch 16,
  4 epochs).

For each task and seed both finders run the same range test (``min_lr``, ``max_lr``,
``num_steps``) on the same model initialisation; we time each, then train the fixed budget at
each pick (peak LR of the schedule) and report the test accuracy. A grid sweep over half-decade
steps (1e-4 .. 10) on the same seeds (paired) gives the grid-best LR and accuracy.

Pick rules compared on the same recorded curves (:data:`RULES`), each pick trained the same way:
the package's ``steepest`` (default), ``valley`` (fastai) and ``basin`` (see below), read from the
result's ``suggestions``; computed in the lab from the result's public fields
(``benchmarks/_rules.py``): ``minimum/10``, ``peak`` (``min(3 steepest, 1.5 minimum)``, a package
rule until issue 14 moved it to the lab), plus ``adaptive`` (``basin`` when the
minimum is more than 0.6 decades right of the steepest point, else ``peak``: chosen looking at the
first fourteen tasks, tested on fresh 3; it was briefly a package rule and was taken out after its
fresh-3 result, see README), ``minimum`` (Smith's upper bound: the LR at the smoothed loss
minimum), ``steepest-end`` (the larger-LR end of the steep-descent region: the last point right of
the steepest one still at least 30% as steep), ``steepest-wide`` (the most negative slope of a curve
smoothed 2.5x wider, sigma = n/20) and ``midpoint`` (``sqrt(steepest * minimum)``, half-way between
the two in log10(lr)). ``basin`` (``0.675 sqrt(left(0.4) right(0.3))``, where ``left(f)`` /
``right(f)`` are the LRs at which the smoothed curve crosses ``f`` of the way back up from its minimum
to its starting level) is the best of 346 rules searched on the first ten tasks
(``benchmarks/lr_finder_rule_search.py``); it joined the package after fresh 2 and fresh 3.

``python -m benchmarks.lr_finder`` (5 seeds, about 35 minutes on 2 shared cores) or ``--quick``
(2 seeds, decade grid); ``--tasks`` picks a subset. Writes ``runs.csv``, ``grid.csv``,
``curves.csv`` (every recorded curve: task, seed, step, lr, loss) and ``summary.md`` to
``results/lr_finder/``; the full mode over every task also writes ``docs/lr_finder.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import make_trainer, quiet, write_csv, write_text
from benchmarks._rules import RULES, rule_picks
from benchmarks._tasks import build

__all__ = ["RULES", "TASKS", "main", "rule_picks"]

TASKS = {
    "cnn_adam": {"data": "mnist1d", "net": "cnn", "optimizer": "adam", "epochs": 4},
    "mlp_sgd": {"data": "mnist1d", "net": "mlp", "optimizer": "sgd", "epochs": 8},
    "digits_sgd": {"data": "digits", "net": "mlp", "optimizer": "sgd", "epochs": 8},
    # Held out from steepest / valley / minimum/10 (added after those were written); NOT held out from
    # `peak`, whose constants were read off the six tasks above and below.
    "cnn_sgd": {"data": "mnist1d", "net": "cnn", "optimizer": "sgd", "epochs": 4, "group": "held out"},
    "mlp_adam": {"data": "mnist1d", "net": "mlp", "optimizer": "adam", "epochs": 8, "group": "held out"},
    "digits_adam": {"data": "digits", "net": "mlp", "optimizer": "adam", "epochs": 8, "group": "held out"},
    # Fresh: defined after `steepest`, `valley`, `minimum/10` and `peak` were fixed; later among the ten tasks
    # of the rule search that chose `basin`.
    "cnn32_sgd": {"data": "mnist1d", "net": "cnn", "cnn": {"channels": 32, "blocks": 3}, "optimizer": "sgd",
                  "epochs": 3, "group": "fresh"},
    "mlp3_adamw": {"data": "mnist1d", "net": "mlp", "mlp": {"hidden": 128, "depth": 3}, "optimizer": "adamw",
                   "weight_decay": 0.01, "batch": 128, "epochs": 10, "group": "fresh"},
    "digits_cnn_adam": {"data": "digits", "net": "cnn", "optimizer": "adam", "batch": 32, "epochs": 4, "group": "fresh"},
    "digits_mlp1_sgd": {"data": "digits", "net": "mlp", "mlp": {"hidden": 64, "depth": 1}, "optimizer": "sgd",
                        "batch": 32, "epochs": 5, "group": "fresh"},
    # Fresh 2: defined (and committed) before the `basin` rule was designed on the ten tasks above, then
    # run once with every rule fixed.
    "cnn8_adamw": {"data": "mnist1d", "net": "cnn", "cnn": {"channels": 8, "blocks": 2}, "optimizer": "adamw",
                   "weight_decay": 0.05, "batch": 128, "epochs": 5, "group": "fresh 2"},
    "mlp512_dropout_sgd": {"data": "mnist1d", "net": "mlp", "mlp": {"hidden": 512, "depth": 2, "dropout": 0.2},
                           "optimizer": "sgd", "batch": 32, "epochs": 6, "group": "fresh 2"},
    "digits_mlp3_adam": {"data": "digits", "net": "mlp", "mlp": {"hidden": 128, "depth": 3}, "optimizer": "adam",
                         "epochs": 6, "group": "fresh 2"},
    "cnn24_k3_sgd": {"data": "mnist1d", "net": "cnn", "cnn": {"channels": 24, "blocks": 2, "kernel_size": 3},
                     "optimizer": "sgd", "batch": 128, "epochs": 5, "group": "fresh 2"},
    # Fresh 3: defined (and committed) before the `adaptive` rule (peak or basin by the curve's shape,
    # chosen after seeing all fourteen tasks above) was written, then run once with every rule fixed.
    "cnn16x3_adam_b32": {"data": "mnist1d", "net": "cnn", "cnn": {"channels": 16, "blocks": 3}, "optimizer": "adam",
                         "batch": 32, "epochs": 3, "group": "fresh 3"},
    "mlp384_adamw": {"data": "mnist1d", "net": "mlp", "mlp": {"hidden": 384, "depth": 2}, "optimizer": "adamw",
                     "weight_decay": 0.1, "epochs": 6, "group": "fresh 3"},
    "digits_cnn8x3_sgd": {"data": "digits", "net": "cnn", "cnn": {"channels": 8, "blocks": 3}, "optimizer": "sgd",
                          "epochs": 6, "group": "fresh 3"},
    "digits_mlp32_sgd_b16": {"data": "digits", "net": "mlp", "mlp": {"hidden": 32, "depth": 2}, "optimizer": "sgd",
                             "batch": 16, "epochs": 4, "group": "fresh 3"},
}
RANGE = dict(min_lr=1e-7, max_lr=10.0, num_steps=100)


def _setup(task: str, seed: int):
    return build(TASKS[task], seed)


def ours(task: str, seed: int):
    """lr-plugins' result (the default pick in ``.suggestion``) and wall seconds (Trainer construction included)."""
    from lr_plugins import find_lr

    model, dm = _setup(task, seed)
    start = time.perf_counter()
    result = find_lr(model, datamodule=dm, **RANGE)
    return result, time.perf_counter() - start


def lightning(task: str, seed: int, root: str) -> tuple[float, float, int]:
    """Lightning's ``Tuner.lr_find`` suggestion, wall seconds (Trainer construction included) and steps."""
    from lightning.pytorch.tuner import Tuner

    model, dm = _setup(task, seed)
    start = time.perf_counter()
    # Enough epochs for num_steps: Tuner.lr_find sets max_steps but keeps max_epochs, and one epoch of
    # digits is only 19 batches.
    trainer = make_trainer(1000, [], root, limit_val_batches=0)
    lr_finder = Tuner(trainer).lr_find(model, datamodule=dm, min_lr=RANGE["min_lr"], max_lr=RANGE["max_lr"],
                                       num_training=RANGE["num_steps"], update_attr=False)
    seconds = time.perf_counter() - start
    pick = lr_finder.suggestion() if lr_finder is not None else None
    steps = len(lr_finder.results["lr"]) if lr_finder is not None else 0
    return (float("nan") if pick is None else float(pick)), seconds, steps


_TRAINED: dict[tuple[str, float, int], float] = {}


def train(task: str, lr: float, seed: int, root: str) -> float:
    """Test accuracy after the task's fixed budget with peak LR ``lr`` (NaN for no LR); cached per run."""
    if not (isinstance(lr, float) and math.isfinite(lr) and lr > 0):
        return float("nan")
    key = (task, lr, seed)
    if key not in _TRAINED:
        _TRAINED[key] = _train(task, lr, seed, root)
    return _TRAINED[key]


def _fit(task: str, lr: float, seed: int, root: str):
    """The task's model trained for its fixed budget with peak LR ``lr``: (model, datamodule, trainer)."""
    from lr_plugins import WarmupCosine

    model, dm = _setup(task, seed)
    trainer = make_trainer(TASKS[task]["epochs"], [WarmupCosine(max_lr=lr, warmup=0.5)], root, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    return model, dm, trainer


def _train(task: str, lr: float, seed: int, root: str) -> float:
    model, dm, trainer = _fit(task, lr, seed, root)
    return float(trainer.test(model, datamodule=dm, verbose=False)[0]["test/acc"])


def _decades(picks: list[float]) -> float:
    logs = [math.log10(p) for p in picks if p > 0 and math.isfinite(p)]
    return max(logs) - min(logs) if logs else float("nan")


def _mean(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return statistics.fmean(v) if v else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds and a coarse grid: under 3 minutes")
    parser.add_argument("--out", default="results/lr_finder")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    args = parser.parse_args(argv)
    quiet()
    seeds = range(2 if args.quick else 5)
    grid = 10.0 ** np.arange(-4, 1.01, 1.0 if args.quick else 0.5)
    grid_seeds = seeds  # paired: the grid trains the same seeds as the picks
    runs, grid_rows, table, curves = [], [], [], []
    with tempfile.TemporaryDirectory() as root:
        for task in args.tasks:
            t0 = time.perf_counter()
            for lr in grid:
                accs = [train(task, float(lr), s, root) for s in grid_seeds]
                grid_rows.append({"task": task, "lr": float(lr), "acc": _mean(accs)})
            task_grid = [r for r in grid_rows if r["task"] == task]
            best = max(task_grid, key=lambda r: r["acc"])
            for seed in seeds:
                result, our_s = ours(task, seed)
                our_lr, our_n = result.suggestion, len(result.lrs)
                curves += [{"task": task, "seed": seed, "step": i, "lr": lr, "loss": loss}
                           for i, (lr, loss) in enumerate(zip(result.lrs, result.losses))]
                pl_lr, pl_s, pl_n = lightning(task, seed, root)
                runs.append({"task": task, "seed": seed, "ours_lr": our_lr, "ours_s": our_s, "ours_steps": our_n,
                             "ours_acc": train(task, our_lr, seed, root), "lightning_lr": pl_lr,
                             "lightning_s": pl_s, "lightning_steps": pl_n, "lightning_acc": train(task, pl_lr, seed, root)})
                for rule, lr in rule_picks(result).items():
                    runs[-1][f"{rule}_lr"] = lr
                    runs[-1][f"{rule}_acc"] = train(task, lr, seed, root)
                print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in runs[-1].items()}, flush=True)
            rs = [r for r in runs if r["task"] == task]
            row = {
                "task": task,
                "grid_best_lr": best["lr"],
                "grid_best_acc": best["acc"],
                "ours_lr_median": float(np.median([r["ours_lr"] for r in rs])),
                "ours_spread_decades": _decades([r["ours_lr"] for r in rs]),
                "ours_acc": _mean([r["ours_acc"] for r in rs]),
                "ours_s": _mean([r["ours_s"] for r in rs]),
                "ours_steps": _mean([r["ours_steps"] for r in rs]),
                "lightning_lr_median": float(np.nanmedian([r["lightning_lr"] for r in rs])),
                "lightning_spread_decades": _decades([r["lightning_lr"] for r in rs]),
                "lightning_acc": _mean([r["lightning_acc"] for r in rs]),
                "lightning_s": _mean([r["lightning_s"] for r in rs]),
                "lightning_steps": _mean([r["lightning_steps"] for r in rs]),
                "lightning_failed": sum(not math.isfinite(r["lightning_lr"]) for r in rs),
                "rules": {rule: {"lr_median": float(np.median([r[f"{rule}_lr"] for r in rs])),
                                 "spread": _decades([r[f"{rule}_lr"] for r in rs]),
                                 "acc": _mean([r[f"{rule}_acc"] for r in rs])} for rule in RULES},
            }
            table.append(row)
            print(f"{task}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.out)
    write_csv(out / "runs.csv", runs)
    write_csv(out / "grid.csv", grid_rows)
    write_csv(out / "curves.csv", curves)
    md = _markdown(table, grid_rows, len(seeds), args.quick)
    write_text(out / "summary.md", md)
    print(md)
    if not args.quick and list(args.tasks) == list(TASKS):
        write_text(Path("docs") / "lr_finder.md", "<!-- written by `python -m benchmarks.lr_finder`; do not edit -->\n\n" + md)


def _label(task: str) -> str:
    group = TASKS[task].get("group")
    return f"{task} ({group})" if group else task


def _markdown(table: list[dict], grid_rows: list[dict], n_seeds: int, quick: bool) -> str:
    lines = [
        f"LR range test {RANGE['min_lr']:g} -> {RANGE['max_lr']:g} over {RANGE['num_steps']} steps, {n_seeds} seeds"
        + (" (quick mode)" if quick else "") + ". Accuracy: test accuracy after the task's fixed budget with the pick "
        "as WarmupCosine's peak, mean over seeds. Spread: max - min of log10(pick) over seeds. Time: finder wall "
        "seconds including the Trainer's construction, mean; steps: recorded points before the stop, mean.",
        "",
        "| task | epochs | grid best lr | grid best acc | ours: median pick | spread (dec) | acc | time s | steps "
        "| Lightning: median pick | spread (dec) | acc | time s | steps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        failed = f" ({r['lightning_failed']} no pick)" if r["lightning_failed"] else ""
        lines.append(
            f"| {_label(r['task'])} | {TASKS[r['task']]['epochs']} | {r['grid_best_lr']:.3g} | {100 * r['grid_best_acc']:.1f} "
            f"| {r['ours_lr_median']:.3g} | {r['ours_spread_decades']:.2f} | {100 * r['ours_acc']:.1f} | {r['ours_s']:.2f} "
            f"| {r['ours_steps']:.0f} "
            f"| {r['lightning_lr_median']:.3g}{failed} | {r['lightning_spread_decades']:.2f} | {100 * r['lightning_acc']:.1f} "
            f"| {r['lightning_s']:.2f} | {r['lightning_steps']:.0f} |"
        )
    lines += ["", "Grid (test accuracy %, mean over the same seeds):", "",
              "| task | " + " | ".join(f"{r['lr']:.3g}" for r in grid_rows if r["task"] == table[0]["task"]) + " |",
              "|---|" + "---|" * sum(r["task"] == table[0]["task"] for r in grid_rows)]
    for r in table:
        lines.append(f"| {_label(r['task'])} | " + " | ".join(f"{100 * g['acc']:.1f}" for g in grid_rows if g["task"] == r["task"]) + " |")
    lines += ["", "Pick rules on the same curves. Each cell: median pick (spread across seeds in decades): "
              "accuracy, **gap** to the grid best in points. Target: gap >= -1.0 and spread <= 0.3.", "",
              "| rule | " + " | ".join(_label(r["task"]) for r in table) + " | target met |",
              "|---|" + "---|" * len(table) + "---|"]
    for rule in RULES:
        cells, met = [], 0
        for r in table:
            q = r["rules"][rule]
            gap = 100 * (q["acc"] - r["grid_best_acc"])
            met += gap >= -1.0 and q["spread"] <= 0.3
            cells.append(f"{q['lr_median']:.3g} ({q['spread']:.2f}): {100 * q['acc']:.1f}, **{gap:+.1f}**")
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {met}/{len(table)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
