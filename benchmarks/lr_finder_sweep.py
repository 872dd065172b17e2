"""A finder-guided sweep: the ``basin`` pick times 0.5, 1 and 2, the best of three by validation accuracy.

``benchmarks/lr_finder`` shows that no single pick of a 100-step range test lands within 1 point of
the grid best on every task, and ``benchmarks/lr_finder_rule_search`` that the multiplier a task
needs is not in the curve. This benchmark measures what three trainings buy instead: for every
task of ``benchmarks/lr_finder`` and seed, the range test's ``basin`` pick is trained at
``scale`` x the pick for each scale of :data:`SCALES` (the same as
``lr-train -m lr_finder=basin lr_finder.scale=0.5,1,2``), the run with the best validation
accuracy (ties: the lower validation loss) is kept, and its test accuracy is compared with the grid best (test accuracy, the best of
the half-decade grid 1e-4 .. 10 on the same seeds, as in ``benchmarks/lr_finder``). The choice
uses the validation split only; the grid best is chosen on the test split, so the comparison
favours the grid.

``python -m benchmarks.lr_finder_sweep`` (18 tasks x 5 seeds x 3 trainings, about 6 minutes on
one core, plus the grid: 990 trainings, about 25 minutes) or ``--grid results/lr_finder/grid.csv``
to take the grid from a finished ``benchmarks.lr_finder`` run (same tasks, seeds and training, so
the same numbers). ``--quick``: 2 seeds, three tasks, a decade grid. Writes ``runs.csv`` and
``summary.md`` to ``results/lr_finder_sweep/`` and, in the full mode, ``docs/lr_finder_sweep.md``.
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import base_parser, make_trainer, quiet, write_csv, write_text
from benchmarks._rules import basin
from benchmarks.lr_finder import RANGE, TASKS, _fit, _label, _setup, train

__all__ = ["SCALES", "choose", "main"]

SCALES = (0.5, 1.0, 2.0)


def choose(val_acc: list[float], val_loss: list[float], test: list[float]) -> tuple[int, float]:
    """The index of the best validation accuracy, ties broken by the lower validation loss, and its test accuracy.

    Example:
        >>> choose([0.90, 0.95, 0.95], [0.30, 0.20, 0.25], [0.91, 0.93, 0.99])
        (1, 0.93)
    """
    i = max(range(len(val_acc)), key=lambda k: (val_acc[k], -val_loss[k] if math.isfinite(val_loss[k]) else -math.inf))
    return i, test[i]


def _train_val(task: str, lr: float, seed: int, root: str) -> tuple[float, float, float]:
    """Validation accuracy and loss, and test accuracy, after the task's fixed budget at peak LR ``lr`` (as ``lr_finder._train``)."""
    model, dm, trainer = _fit(task, lr, seed, root)
    val = make_trainer(1, [], root).validate(model, datamodule=dm, verbose=False)[0]
    test = trainer.test(model, datamodule=dm, verbose=False)[0]["test/acc"]
    return float(val["val/acc"]), float(val["val/loss"]), float(test)


def _grid_best(path: str | None, tasks: list[str], seeds: range, grid: np.ndarray, root: str) -> dict[str, tuple[float, float]]:
    """(LR, mean test accuracy) of the best grid point per task: read from ``path`` or trained."""
    if path is not None:
        rows = list(csv.DictReader(open(path)))
        return {t: max(((float(r["lr"]), float(r["acc"])) for r in rows if r["task"] == t), key=lambda p: p[1])
                for t in tasks}
    return {t: max(((float(lr), float(np.mean([train(t, float(lr), s, root) for s in seeds]))) for lr in grid),
                   key=lambda p: p[1]) for t in tasks}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = base_parser(__doc__, "results/lr_finder_sweep")
    parser.add_argument("--grid", default=None, help="grid.csv of a finished benchmarks.lr_finder run")
    parser.add_argument("--tasks", nargs="*", default=None)
    args = parser.parse_args(argv)
    quiet()
    from lr_plugins import find_lr

    tasks = args.tasks or (["cnn_adam", "mlp_sgd", "digits_sgd"] if args.quick else list(TASKS))
    seeds = range(2 if args.quick else 5)
    grid = 10.0 ** np.arange(-4, 1.01, 1.0 if args.quick else 0.5)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        best = _grid_best(args.grid, tasks, seeds, grid, root)
        for task in tasks:
            for seed in seeds:
                model, dm = _setup(task, seed)
                found = find_lr(model, datamodule=dm, **RANGE)
                pick = basin(found.lrs, found.smoothed)  # the lab's basin (it left the product)
                accs = [_train_val(task, scale * pick, seed, root) for scale in SCALES]
                i, test = choose(*([a[k] for a in accs] for k in range(3)))
                rows.append({"task": task, "seed": seed, "basin": pick, "chosen_scale": SCALES[i], "chosen_lr": SCALES[i] * pick,
                             "test_acc": test, **{f"val_x{s:g}": a[0] for s, a in zip(SCALES, accs)},
                             **{f"val_loss_x{s:g}": a[1] for s, a in zip(SCALES, accs)},
                             **{f"test_x{s:g}": a[2] for s, a in zip(SCALES, accs)}})
                print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    md = _markdown(rows, best, tasks, len(seeds), args.grid, args.quick)
    out = Path(args.out)
    write_csv(out / "runs.csv", rows)
    write_text(out / "summary.md", md)
    print(md)
    if not args.quick and not args.no_docs and tasks == list(TASKS):
        write_text(Path("docs") / "lr_finder_sweep.md", "<!-- written by `python -m benchmarks.lr_finder_sweep`; do not edit -->\n\n" + md)
    return rows


def _markdown(rows: list[dict], best: dict, tasks: list[str], n_seeds: int, grid_from: str | None, quick: bool) -> str:
    source = f"read from `{grid_from}`" if grid_from else "trained in this run"
    lines = [
        f"`basin` pick x {', '.join(f'{s:g}' for s in SCALES)}: three trainings per seed, the one with the best "
        f"validation accuracy (ties: the lower validation loss) kept; {n_seeds} seeds{' (quick mode)' if quick else ''}. Grid best: the best mean test "
        f"accuracy of the half-decade grid on the same seeds ({source}). Accuracy: mean test accuracy over seeds; "
        "gap to the grid best in points; spread: max - min of log10 of the kept LR over seeds.",
        "",
        "| task | grid best lr | grid best acc | basin x 1: acc (gap) | kept scale per seed | sweep: acc | gap | spread (dec) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    gaps: dict[str, list[float]] = {"sweep": [], "basin": []}
    for task in tasks:
        rs = [r for r in rows if r["task"] == task]
        top = 100 * best[task][1]
        one = 100 * float(np.mean([r["test_x1"] for r in rs]))
        acc = 100 * float(np.mean([r["test_acc"] for r in rs]))
        logs = [math.log10(r["chosen_lr"]) for r in rs]
        gaps["sweep"].append(acc - top)
        gaps["basin"].append(one - top)
        lines.append(f"| {_label(task)} | {best[task][0]:.3g} | {top:.1f} | {one:.1f} ({one - top:+.1f}) | "
                     f"{' '.join(format(r['chosen_scale'], 'g') for r in rs)} | {acc:.1f} | **{acc - top:+.2f}** | "
                     f"{max(logs) - min(logs):.2f} |")
    lines += [""] + [f"{name}: within 1 point of the grid best on {sum(g >= -1.0 for g in gap)}/{len(tasks)} tasks, "
                     f"mean gap {np.mean(gap):+.2f}, worst {min(gap):+.1f}."
                     for name, gap in (("The sweep", gaps["sweep"]), ("`basin` alone", gaps["basin"]))]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
