"""Does the finder's pick fit the schedule that follows it? A pre-registered test on fresh tasks.

Issue 14.3: the right pick rule depends on the schedule that follows the range test (a higher
pick suits an annealed schedule and can ruin a constant one), and rules whose constants were
fitted on the benchmark's tasks (``basin``) stay in the product only if they hold up on tasks
they were not fitted on. This benchmark trains every pick under both protocols on tasks that
no earlier benchmark or rule search used. Everything below :data:`PREREGISTRATION` was fixed
and committed (commit message "pre-register ...") before any of it was run.

``python -m benchmarks.lr_finder_schedule --jobs 2`` (about 35 minutes of CPU: about 500
trainings of 1-9 s each and 30 range tests) writes the raw CSVs to ``results/lr_finder_schedule/<task>/``
(``picks.csv``, ``curves.csv``, ``trainings.csv``) and the report to ``docs/research/lr-finder-schedule.md``.
It is resumable: every training is cached as soon as it ends. ``--tasks T ...`` runs a subset (one
process per task on a shared machine, then ``--report`` rebuilds the report from all the caches);
``--quick`` runs one task, one seed and a 3-point grid for 1 epoch (a smoke test, about 15 s,
nothing to docs/). The CSVs of the run behind the docs page are kept in
``benchmarks/data/lr_finder_schedule/``: ``--report --out benchmarks/data/lr_finder_schedule``
rebuilds the page from them.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import make_trainer, quiet, write_csv, write_text
from benchmarks._rules import basin, peak
from benchmarks._tasks import build

__all__ = ["FRESH_TASKS", "SEEDS", "GRID", "PROTOCOLS", "PICKS", "AUTO", "RANGE", "PREREGISTRATION", "CONCLUSION",
           "schedule_for", "picks_for", "report", "main"]

PREREGISTRATION = """\
## Pre-registration

Written and committed before any of these tasks was run for accuracy (see the commit "pre-register ..."
in the history of `benchmarks/lr_finder_schedule.py`; before it only a timing probe, one training per
task with its accuracy not printed, and a 1-epoch smoke run of the code). Nothing below was changed
after results were seen.

**Fresh tasks** (none of them is among the 18 tasks of `benchmarks/lr_finder.py` or the 10 of
`benchmarks/lr_finder_rule_search.py`; two are new in kind: a GRU, and label smoothing / a 5-layer
MLP; the others change optimizer momentum (0.5, 0) or batch size (256) far from anything tried):

| task | data | network | optimizer | batch | epochs |
|---|---|---|---|---|---|
| `digits_cnn12_sgd_m05` | scikit-learn digits as a length-64 sequence | CNN1D 12 channels x 2 blocks, kernel 3 | SGD, momentum 0.5 (Nesterov), weight decay 5e-4 | 64 | 6 |
| `mnist1d_gru48_adam` | MNIST-1D | GRU (1 layer, hidden 48) over the 40 steps, linear head | Adam | 64 | 4 |
| `mnist1d_mlp5_adamw_ls` | MNIST-1D | MLP 5 x 96 | AdamW, weight decay 0.02, label smoothing 0.1 | 64 | 6 |
| `digits_mlp128_sgd_b256` | digits | MLP 2 x 128 | SGD, momentum 0.9 (Nesterov), weight decay 5e-4 | 256 | 30 |
| `mnist1d_cnn16x3k7_sgd_m0` | MNIST-1D | CNN1D 16 channels x 3 blocks, kernel 7 | plain SGD (momentum 0), weight decay 5e-4 | 64 | 4 |

**Range test**: lr-plugins' `find_lr` and Lightning's `Tuner.lr_find`, both 1e-7 -> 10 over 100
steps, on the same model initialisation (seed s), once per task and seed; the same curve serves both
protocols.

**Picks compared** (per seed, from the public result fields `lrs`, `smoothed`, `suggestions`):
`steepest`, `basin`, `valley` (the product's rules as they are on this branch, commit 84ca8de);
`peak` = min(3 x steepest, 1.5 x LR at the smoothed minimum, last LR) (first LR when the minimum is
the first point), computed in the lab; Lightning's `Tuner.lr_find(...).suggestion()` (default
arguments); `auto` = what `suggestion="auto"` resolves to for the protocol: `steepest` for
constant, `basin` for annealed (the finder helper's `auto` is not merged on this branch, so this is
computed here as steepest / basin, as the design card specifies).

**Protocols** (the same task budget, the pick as the LR): (a) *constant*: `Constant(max_lr=pick)`,
no warmup; (b) *annealed*: `WarmupCosine(max_lr=pick, warmup=0.5)` (half an epoch of warmup, then
cosine to 0 at the end). Validation is off; the score is test accuracy at the end.

**Grid**: half-decade LRs 1e-4, 3.16e-4, ..., 10 (11 points), each trained under both protocols with
the same seeds 0, 1, 2 (paired with the picks). Grid best = the highest mean-over-seeds accuracy.

**Gap** of a rule on a task and protocol = mean over the 3 seeds of the accuracy trained at that
seed's pick, minus the grid best, in accuracy points. A seed with no pick (Tuner returns none) makes
the task a miss for that rule.

**Pass criterion**: a rule is *within 2 points* on a task and protocol when gap >= -2.0.
1. The product passes when `auto` is within 2 points on every fresh task under both protocols.
2. `basin` (its constants 0.675, 0.4, 0.3 were fitted on the benchmark's first ten tasks) stays in the
   product as the annealed rule only if it is within 2 points on every fresh task under the annealed
   protocol, the one `auto` uses it for. Its constant-protocol result is reported beside it; under
   the issue's literal wording ("under both constant and annealed training") it stays only if it is
   within 2 points on every task under both, and the report states that verdict as well.
3. `steepest` (the constant-LR rule) is judged the same way under the constant protocol.
4. Every rule, Tuner included, is reported with its gap per task, the mean and worst gap and the
   count of tasks within 2 points under each protocol. Misses are reported as they are.
"""

#: Plain-language reading of the results, written after they were in (the verdicts above it are mechanical).
CONCLUSION = """\
**The product's pick fails the pre-registered test, and so does every other rule, Lightning's
Tuner included.** No rule is within 2 points of the grid best on all five fresh tasks under either
protocol. The best counts are 3/5 (`basin`, annealed) and 2/5 (`basin`, `peak` and the Tuner under
a constant LR).

What the pre-registered criterion decides:

- `basin` **leaves the product for the lab**. It is within 2 points on 3/5 tasks annealed and 2/5 under a
  constant LR. It was still the best of the compared rules under annealing (mean gap -13.5 points,
  against -21.2 for `peak`, -26.3 for `steepest` and -37.4 for the Tuner). It only falls short of the
  bar that was set in advance.
- `steepest`, the rule `auto` uses for a constant LR, is within 2 points on only 1/5 tasks under a
  constant LR (`digits_mlp128_sgd_b256`, -0.7). It misses narrowly on `mnist1d_mlp5_adamw_ls` (-2.1).
  On the plain-SGD CNN it misses by 5.3 points, although its picks (0.02-0.03) sit between the grid's
  two best LRs. On the digits CNN it misses by 21.5 (its picks are too low), and on the GRU by 77.
  It has no constant fitted on benchmark tasks, so the criterion does not remove it. But the docs must
  not claim that it lands near the best constant LR.
- `peak` (already moved to the lab) and `valley` do no better. `valley` is the worst rule overall.

What the misses are:

- `mnist1d_gru48_adam` (-57 to -78 points for every product rule): a 100-step range test never
  reaches the LRs at which this GRU starts to learn. Its smoothed loss falls only 0.1-0.8% below the
  start (ln 10 = 2.30) over the whole range, so every pick is noise (2e-6 .. 6e-4) and trains to
  chance. The product's "no clear descent" check (a fall under 5%) fires on all three seeds, so a user
  would have been warned. The benchmark did not record the warnings; this is read off the recorded curves.
- `digits_cnn12_sgd_m05` (momentum 0.5): the curves are noisy before the descent at 0.01-0.6.
  `steepest` picks anywhere from 8e-4 to 0.03 (-21.5 constant, -55.8 annealed); `basin` picks
  0.15-0.31 (+12.2 constant, -6.2 annealed).
- `mnist1d_cnn16x3k7_sgd_m0` (plain SGD): this is where the schedule matters, as issue 14 said. `basin`
  is -11.1 under a constant LR and -1.9 annealed, while `peak` is +0.5 and -2.9.
- On the two MLP tasks the curve has one clear descent, and the gaps are small. On
  `digits_mlp128_sgd_b256`, every rule except `valley` (-24.4 / -42.5) is within 1 point under both
  protocols. On `mnist1d_mlp5_adamw_ls`, every rule is within 1.5 points annealed. Under a constant LR
  the Tuner is at -0.9, `valley` at -1.9 and `steepest` at -2.1, while the higher picks overshoot
  (`basin` -3.3, `peak` -5.7).

How far to trust it: 3 seeds, and the two CNN tasks are far from converged in their budgets
(best 50-95%). There, seeds at the same pick differ by up to 28 points (`steepest` on
`mnist1d_cnn16x3k7_sgd_m0` under a constant LR: 61.7 / 51.4 / 79.6). The grid best is the maximum of
11 noisy means, so it sits a few points high, which makes "within 2 points" a strict bar on those
tasks. The misses of 20 points or more (the GRU everywhere, `steepest` on the digits CNN, the Tuner on
both CNNs, `valley` on most tasks) are far beyond that noise.

`auto` was computed here as `steepest` (constant) / `basin` (annealed), because the finder helper's
`suggestion="auto"` is not merged on this branch. The reading for the product: the range test's pick
is a starting point, not a near-optimal LR. A curve with no clear descent (the GRU) gives no usable
pick at all. A short sweep around the pick (`benchmarks/lr_finder_sweep.py`: the pick x 0.5, 1, 2, keeping the
best by validation) is what the evidence supports recommending.
"""

FRESH_TASKS: dict[str, dict[str, Any]] = {  # the slowest first: --jobs hands them out in this order
    "mnist1d_gru48_adam": {"data": "mnist1d", "net": "gru", "gru": {"hidden": 48}, "optimizer": "adam", "batch": 64,
                           "epochs": 4},
    "mnist1d_cnn16x3k7_sgd_m0": {"data": "mnist1d", "net": "cnn", "cnn": {"channels": 16, "blocks": 3, "kernel_size": 7},
                                 "optimizer": "sgd", "momentum": 0.0, "batch": 64, "epochs": 4},
    "digits_cnn12_sgd_m05": {"data": "digits", "net": "cnn", "cnn": {"channels": 12, "blocks": 2, "kernel_size": 3},
                             "optimizer": "sgd", "momentum": 0.5, "batch": 64, "epochs": 6},
    "mnist1d_mlp5_adamw_ls": {"data": "mnist1d", "net": "mlp", "mlp": {"hidden": 96, "depth": 5}, "optimizer": "adamw",
                              "weight_decay": 0.02, "label_smoothing": 0.1, "batch": 64, "epochs": 6},
    "digits_mlp128_sgd_b256": {"data": "digits", "net": "mlp", "mlp": {"hidden": 128, "depth": 2}, "optimizer": "sgd",
                               "batch": 256, "epochs": 30},
}
SEEDS = (0, 1, 2)
GRID = tuple(float(10.0 ** e) for e in np.arange(-4, 1.01, 0.5))
RANGE = dict(min_lr=1e-7, max_lr=10.0, num_steps=100)
PROTOCOLS = ("constant", "annealed")
PICKS = ("steepest", "basin", "valley", "peak", "tuner", "auto")
AUTO = {"constant": "steepest", "annealed": "basin"}
WITHIN = 2.0  # accuracy points
OUT = "results/lr_finder_schedule"
DOC = Path("docs") / "research" / "lr-finder-schedule.md"


def schedule_for(protocol: str, lr: float):
    """The schedule callback of a protocol: ``Constant(max_lr=lr)`` or ``WarmupCosine(max_lr=lr, warmup=0.5)``.

    Example:
        >>> schedule_for("annealed", 0.1).lr_at(0, total_steps=10)
        0.0
    """
    from lr_plugins import Constant, WarmupCosine

    if protocol == "constant":
        return Constant(max_lr=lr)
    if protocol == "annealed":
        return WarmupCosine(max_lr=lr, warmup=0.5)
    raise ValueError(f"protocol={protocol!r} is not allowed: use one of {PROTOCOLS}.")


def train(spec: dict[str, Any], protocol: str, lr: float, seed: int, root: str) -> float:
    """Test accuracy after the task's budget at ``lr`` under ``protocol`` (the model of :func:`build`)."""
    model, dm = build(spec, seed)
    trainer = make_trainer(spec["epochs"], [schedule_for(protocol, lr)], root, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    return float(trainer.test(model, datamodule=dm, verbose=False)[0]["test/acc"])


def picks_for(result: Any, tuner_lr: float) -> dict[str, float]:
    """Every pick of :data:`PICKS` but ``auto`` from a finder result (public fields only) and the Tuner's pick.

    Example:
        >>> from types import SimpleNamespace
        >>> lrs = list(np.logspace(-4, 0, 41))
        >>> s = list(np.concatenate([np.linspace(2.0, 1.0, 21), np.linspace(1.0, 3.0, 21)[1:]]))
        >>> r = SimpleNamespace(lrs=lrs, smoothed=s, suggestions={"steepest": 1e-3, "valley": 1e-3})
        >>> p = picks_for(r, 0.5)
        >>> p["peak"] == 3e-3, p["tuner"]
        (True, 0.5)
    """
    picks = {"steepest": float(result.suggestions["steepest"]), "basin": basin(result.lrs, result.smoothed),
             "valley": float(result.suggestions["valley"])}  # basin: the lab's copy since it left the product
    picks["peak"] = peak(result.lrs, result.smoothed, picks["steepest"])
    picks["tuner"] = float(tuner_lr)
    return picks


def _tuner(spec: dict[str, Any], seed: int, root: str) -> float:
    from lightning.pytorch.tuner import Tuner

    model, dm = build(spec, seed)
    # Enough epochs for num_steps: Tuner.lr_find sets max_steps but keeps max_epochs.
    trainer = make_trainer(1000, [], root, limit_val_batches=0)
    found = Tuner(trainer).lr_find(model, datamodule=dm, min_lr=RANGE["min_lr"], max_lr=RANGE["max_lr"],
                                   num_training=RANGE["num_steps"], update_attr=False)
    pick = found.suggestion() if found is not None else None
    return float("nan") if pick is None else float(pick)


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_task(task: str, spec: dict[str, Any], seeds: tuple[int, ...], grid: tuple[float, ...], out: str) -> str:
    """Run (or resume) one task: its range tests, then every training not yet in its cache."""
    from lr_plugins import find_lr

    quiet()
    folder = Path(out) / task
    picks_path, curves_path, cache_path = folder / "picks.csv", folder / "curves.csv", folder / "trainings.csv"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        picks = _read(picks_path)
        done = {int(r["seed"]) for r in picks}
        curves = _read(curves_path)
        for seed in seeds:
            if seed in done:
                continue
            model, dm = build(spec, seed)
            result = find_lr(model, datamodule=dm, **RANGE)
            found = picks_for(result, _tuner(spec, seed, root))
            picks += [{"task": task, "seed": seed, "rule": rule, "lr": lr} for rule, lr in found.items()]
            curves += [{"task": task, "seed": seed, "step": i, "lr": lr, "loss": loss, "smoothed": s}
                       for i, (lr, loss, s) in enumerate(zip(result.lrs, result.losses, result.smoothed))]
            write_csv(picks_path, picks)
            write_csv(curves_path, curves)
        cache = _read(cache_path)
        have = {(r["protocol"], float(r["lr"]), int(r["seed"])) for r in cache}
        wanted = [(p, float(r["lr"]), int(r["seed"])) for p in PROTOCOLS for r in picks if int(r["seed"]) in seeds]
        wanted += [(p, lr, s) for p in PROTOCOLS for lr in grid for s in seeds]
        for protocol, lr, seed in dict.fromkeys(wanted):
            if (protocol, lr, seed) in have or not (math.isfinite(lr) and lr > 0):
                continue
            start = time.perf_counter()
            acc = train(spec, protocol, lr, seed, root)
            cache.append({"task": task, "protocol": protocol, "lr": lr, "seed": seed, "acc": acc,
                          "seconds": round(time.perf_counter() - start, 2)})
            have.add((protocol, lr, seed))
            write_csv(cache_path, cache)
    return f"{task}: done in {time.perf_counter() - t0:.0f} s ({len(cache)} trainings cached)"


def _gaps(task: str, out: str, seeds: tuple[int, ...], grid: tuple[float, ...]) -> dict[str, Any]:
    """Grid best and every rule's pick / accuracy / gap for one task, both protocols, from the cached CSVs."""
    folder = Path(out) / task
    acc = {(r["protocol"], float(r["lr"]), int(r["seed"])): float(r["acc"]) for r in _read(folder / "trainings.csv")}
    lr_of = {(r["rule"], int(r["seed"])): float(r["lr"]) for r in _read(folder / "picks.csv")}
    row: dict[str, Any] = {"task": task, "grid": {}, "best": {}, "rules": {}}
    for protocol in PROTOCOLS:
        means = {lr: statistics.fmean(acc[(protocol, lr, s)] for s in seeds) for lr in grid}
        row["grid"][protocol] = means
        best_lr = max(means, key=means.get)
        row["best"][protocol] = (best_lr, means[best_lr])
        for rule in PICKS:
            source = AUTO[protocol] if rule == "auto" else rule
            lrs = [lr_of[(source, s)] for s in seeds]
            accs = [acc.get((protocol, lr, s), float("nan")) for lr, s in zip(lrs, seeds)]
            mean = statistics.fmean(accs) if all(math.isfinite(a) for a in accs) else float("nan")
            finite = [lr for lr in lrs if math.isfinite(lr) and lr > 0]
            row["rules"][(protocol, rule)] = {
                "lr": float(np.median(finite)) if finite else float("nan"),
                "acc": mean,
                "gap": 100 * (mean - means[best_lr]),
                "seeds": accs,
                "lrs": lrs,
            }
    return row


def report(rows: list[dict[str, Any]], seeds: tuple[int, ...], quick: bool = False) -> str:
    """The markdown report: pre-registration, both protocols' tables, the grids and the verdicts."""
    tasks = [r["task"] for r in rows]
    lines = ["# Does the finder's pick fit the schedule? (fresh tasks, both protocols)", "",
             "<!-- written by `python -m benchmarks.lr_finder_schedule`; do not edit -->", ""]
    if quick:
        lines += ["**Quick mode: a smoke test, not evidence.**", ""]
    lines += [PREREGISTRATION, "## Results", "",
              f"{len(seeds)} seeds, paired. Each cell: median pick over seeds, then **gap** to the grid best "
              "(accuracy points; mean over seeds of the accuracy at each seed's own pick). "
              f"Within {WITHIN:g} points = gap >= -{WITHIN:g}.", ""]
    verdict: dict[tuple[str, str], tuple[int, float, float]] = {}
    for protocol in PROTOCOLS:
        what = "constant LR = the pick" if protocol == "constant" else "WarmupCosine, peak = the pick"
        lines += [f"### {protocol.capitalize()} protocol ({what})", "",
                  "| rule | " + " | ".join(f"`{t}`" for t in tasks) + " | mean gap | worst gap | within 2 pts |",
                  "|---|" + "---|" * len(tasks) + "---|---|---|"]
        lines.append("| grid best | " + " | ".join(
            f"{r['best'][protocol][0]:.3g}: {100 * r['best'][protocol][1]:.1f}%" for r in rows) + " | | | |")
        for rule in PICKS:
            cells, gaps = [], []
            for r in rows:
                q = r["rules"][(protocol, rule)]
                gaps.append(q["gap"])
                gap = f"**{q['gap']:+.1f}**" if math.isfinite(q["gap"]) else "**no pick**"
                cells.append(f"{q['lr']:.3g}: {gap}")
            finite = [g for g in gaps if math.isfinite(g)]
            within = sum(math.isfinite(g) and g >= -WITHIN for g in gaps)
            mean = statistics.fmean(finite) if finite else float("nan")
            worst = min(finite) if finite else float("nan")
            verdict[(protocol, rule)] = (within, mean, worst)
            name = f"auto (= {AUTO[protocol]})" if rule == "auto" else ("Lightning Tuner" if rule == "tuner" else rule)
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean:+.1f} | {worst:+.1f} | {within}/{len(rows)} |")
        lines += ["", "Grid (test accuracy %, mean over seeds):", "",
                  "| task | " + " | ".join(f"{lr:.3g}" for lr in rows[0]["grid"][protocol]) + " |",
                  "|---|" + "---|" * len(rows[0]["grid"][protocol])]
        for r in rows:
            lines.append(f"| `{r['task']}` | " + " | ".join(f"{100 * a:.1f}" for a in r["grid"][protocol].values()) + " |")
        lines.append("")
    lines += ["### Per seed", "",
              "Each cell: the seed's pick, then its test accuracy (%) under the constant / the annealed protocol.", "",
              "| task | seed | " + " | ".join(("Tuner" if r == "tuner" else r) for r in PICKS if r != "auto") + " |",
              "|---|---|" + "---|" * (len(PICKS) - 1)]
    for r in rows:
        for i, seed in enumerate(seeds):
            cells = []
            for rule in (p for p in PICKS if p != "auto"):
                c, a = r["rules"][("constant", rule)], r["rules"][("annealed", rule)]
                cells.append(f"{c['lrs'][i]:.3g}: {100 * c['seeds'][i]:.1f} / {100 * a['seeds'][i]:.1f}")
            lines.append(f"| `{r['task']}` | {seed} | " + " | ".join(cells) + " |")
    lines.append("")
    n = len(rows)

    def ok(protocol: str, rule: str) -> bool:
        return verdict[(protocol, rule)][0] == n

    lines += ["## Verdicts (by the pre-registered criterion)", ""]
    auto_ok = ok("constant", "auto") and ok("annealed", "auto")
    lines.append(f"1. The product's pick (`auto`): {'PASSES' if auto_ok else 'FAILS'}: within {WITHIN:g} points on "
                 f"{verdict[('constant', 'auto')][0]}/{n} tasks under the constant protocol (steepest) and "
                 f"{verdict[('annealed', 'auto')][0]}/{n} under the annealed one (basin).")
    lines.append(f"2. `basin` as the annealed rule: {'STAYS' if ok('annealed', 'basin') else 'GOES to the lab'} "
                 f"({verdict[('annealed', 'basin')][0]}/{n} within {WITHIN:g} points annealed). Under the issue's "
                 f"literal wording (both protocols): {'stays' if ok('annealed', 'basin') and ok('constant', 'basin') else 'goes'} "
                 f"({verdict[('constant', 'basin')][0]}/{n} within {WITHIN:g} points under a constant LR).")
    lines.append(f"3. `steepest` as the constant-LR rule: {'STAYS' if ok('constant', 'steepest') else 'MISSES'} "
                 f"({verdict[('constant', 'steepest')][0]}/{n} within {WITHIN:g} points constant; "
                 f"{verdict[('annealed', 'steepest')][0]}/{n} annealed).")
    lines.append("4. Counts within 2 points (constant / annealed): " + "; ".join(
        f"{'Tuner' if rule == 'tuner' else rule} {verdict[('constant', rule)][0]}/{n} / {verdict[('annealed', rule)][0]}/{n}"
        for rule in PICKS if rule != "auto") + ".")
    if CONCLUSION and not quick:
        lines += ["", "## Conclusion (written after the results)", "", CONCLUSION.strip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one task, one seed, 3 LRs, 1 epoch: a smoke test")
    parser.add_argument("--out", default=OUT, help=f"output folder (default {OUT})")
    parser.add_argument("--jobs", type=int, default=1, help="tasks run in parallel processes (default 1)")
    parser.add_argument("--report", action="store_true", help="only rebuild the report from the cached CSVs")
    parser.add_argument("--tasks", nargs="*", default=list(FRESH_TASKS), choices=list(FRESH_TASKS),
                        help="a subset of the tasks (the report covers only these; docs/ only with all of them)")
    parser.add_argument("--no-docs", action="store_true", help=f"do not write {DOC}")
    args = parser.parse_args(argv)
    tasks = {t: FRESH_TASKS[t] for t in args.tasks}
    seeds, grid = SEEDS, GRID
    if args.quick:
        tasks = {"digits_mlp128_sgd_b256": {**FRESH_TASKS["digits_mlp128_sgd_b256"], "epochs": 1}}
        seeds, grid = (0,), (1e-3, 1e-2, 1e-1)
    if not args.report:
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                for line in pool.map(run_task, tasks, tasks.values(), *zip(*[(seeds, grid, args.out)] * len(tasks))):
                    print(line, flush=True)
        else:
            for task, spec in tasks.items():
                print(run_task(task, spec, seeds, grid, args.out), flush=True)
    md = report([_gaps(task, args.out, seeds, grid) for task in tasks], seeds, quick=args.quick)
    write_text(Path(args.out) / "report.md", md)
    print(md)
    if not args.quick and not args.no_docs and list(tasks) == list(FRESH_TASKS):
        write_text(DOC, md)


if __name__ == "__main__":
    main()
