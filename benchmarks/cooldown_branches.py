"""Cooldown branches from one warmup-stable-decay run vs separate cosine runs (Hägele et al. 2024), on MNIST-1D.

Hägele et al. (2024) point out that with warmup-stable-decay one long run at a constant LR gives
models for several training lengths: a cooldown branched from the stable phase at the right
step ends where a separate run of that length would, so the lengths cost the shared stable
phase once plus a cooldown each, where cosine needs a full run per length. This checks it on
the setup of :mod:`benchmarks._claims`, per seed:

* **one WSD run, three branches.** A ``WarmupStableDecay(warmup=1, decay=0.2,
  decay_shape="1-sqrt")`` run, planned for the longest length, stops in its stable phase after
  ``B`` epochs and saves a checkpoint (the *stem*). Each length ``L`` resumes from that one
  checkpoint with ``max_epochs=L`` and a fresh callback: the schedule now plans for ``L`` and
  decays over its last 20% (lr-plugins' length-change contract: seamless while the checkpoint
  is before the new decay, ``B <= 0.8 L``). The LR of every step, stem and branch, is checked
  against ``WarmupStableDecay.lr_at`` for that length;
* **three cosine runs.** ``WarmupCosine(warmup=1, min_lr=0.1 * peak)`` (the paper's baseline),
  one full run per length.

Reported per length: test loss and accuracy of the branch and of the cosine run (mean ± std, per
seed, paired difference with the verdict "the branch matches cosine"), and the optimizer steps
each approach spent, counted from the runs.

Run ``python -m benchmarks.cooldown_branches`` (full: 10 seeds, lengths 10, 15, 20 epochs,
branches at epoch 8) or ``--quick`` (2 seeds, lengths 5, 6, 8, branches at 4, a few batches per
epoch: a smoke run, not evidence). Writes ``runs.csv``, ``lr_seed0.csv``, ``summary.md`` and
``cooldown_branches.png`` into ``results/cooldown_branches/``; the full mode also writes
``docs/cooldown_branches.{md,png}``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _claims
from benchmarks._claims import PEAK_LR
from benchmarks._common import base_parser, finish, quiet

__all__ = ["DECAY", "wsd", "cosine", "run_seed", "summarize", "plot", "main"]

DECAY = 0.2
CLAIM = ("cooldowns branched from the stable phase of one warmup-stable-decay run match separate cosine runs of "
         "each length, for the cost of the shared stable phase once plus one cooldown per length (Hägele et al. 2024, "
         "*Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations*).")


def wsd():
    """The WSD callback of every stem and branch (a fresh one per fit)."""
    from lr_plugins import WarmupStableDecay

    return WarmupStableDecay(max_lr=PEAK_LR, min_lr=0.0, warmup=1, decay=DECAY, decay_shape="1-sqrt")


def cosine():
    """The cosine baseline: one full run per length."""
    from lr_plugins import WarmupCosine

    return WarmupCosine(max_lr=PEAK_LR, min_lr=0.1 * PEAK_LR, warmup=1)


def run_seed(seed: int, lengths: list[int], branch_at: int, quick: bool) -> tuple[list[dict], dict[str, list[float]]]:
    """One seed: the stem, a branch per length and a cosine run per length; rows and the LR traces."""
    rows, traces = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "stem.ckpt"
        stem = _claims.train(wsd(), max(lengths), seed, tmp, quick=quick, stop_after=branch_at, save_to=ckpt)
        spe = stem["steps_per_epoch"]
        rows.append({"approach": "WSD", "part": "stem", "length": branch_at, "seed": seed, "steps": stem["steps"],
                     "test_loss": "", "test_acc": "", "max_lr_error": "", "fit_seconds": stem["fit_seconds"]})
        traces["stem"] = stem["lrs"]
        for length in lengths:
            branch = _claims.train(wsd(), length, seed, tmp, quick=quick, ckpt_path=str(ckpt))
            lrs = stem["lrs"] + branch["lrs"]
            total = length * spe
            expected = [wsd().lr_at(k, total_steps=int(total), steps_per_epoch=spe) for k in range(len(lrs))]
            error = max(abs(a - b) for a, b in zip(lrs, expected))
            if branch["first_step"] != stem["steps"]:
                raise RuntimeError(f"the branch of length {length} started at step {branch['first_step']}, "
                                   f"not at the stem's end ({stem['steps']})")
            rows.append({"approach": "WSD", "part": "branch", "length": length, "seed": seed, "steps": branch["steps"],
                         "test_loss": branch["test_loss"], "test_acc": branch["test_acc"], "max_lr_error": error,
                         "fit_seconds": branch["fit_seconds"]})
            traces[f"WSD {length}"] = lrs
            run = _claims.train(cosine(), length, seed, tmp, quick=quick)
            rows.append({"approach": "cosine", "part": "run", "length": length, "seed": seed, "steps": run["steps"],
                         "test_loss": run["test_loss"], "test_acc": run["test_acc"], "max_lr_error": "",
                         "fit_seconds": run["fit_seconds"]})
            traces[f"cosine {length}"] = run["lrs"]
    return rows, traces


def _label(row: dict) -> str:
    return f"{'WSD branch' if row['approach'] == 'WSD' else 'cosine'} {row['length']}"


def summarize(rows: list[dict], lengths: list[int], branch_at: int, quick: bool) -> str:
    """The report page: accuracy per length, steps spent, paired differences, every seed."""
    seeds = sorted({r["seed"] for r in rows})
    ended = [dict(r, name=_label(r)) for r in rows if r["test_loss"] != ""]
    stem = [r["steps"] for r in rows if r["part"] == "stem"]
    spent = {a: sorted({sum(r["steps"] for r in rows if r["approach"] == a and r["seed"] == s) for s in seeds})
             for a in ("WSD", "cosine")}
    errors = [r["max_lr_error"] for r in rows if r["part"] == "branch"]
    lines = ["# Cooldown branches from one WSD run vs separate cosine runs", ""]
    if quick:
        lines += ["**Quick mode: a smoke run over a few batches per epoch. These numbers are not evidence.**", ""]
    lines += [
        f"Claim: {CLAIM}", "",
        f"Setup (fixed before the runs): {_claims.SETUP}. Lengths {', '.join(map(str, lengths))} epochs, "
        f"{len(seeds)} seeds (0–{seeds[-1]}). WSD: one run planned for {max(lengths)} epochs "
        f"(`WarmupStableDecay(warmup=1, decay={DECAY}, decay_shape=\"1-sqrt\")`, to 0) stops after {branch_at} epochs, in "
        f"its stable phase, and saves a checkpoint; each length resumes from that checkpoint with `max_epochs` = "
        f"the length and decays over its own last {DECAY:.0%}. Cosine: `WarmupCosine(warmup=1, min_lr=0.1 * peak)`, one "
        "full run per length. Same seeds for both: same initial weights; the batch order is the same up to the "
        "branch point. Metrics of the final model on the 1000 test sequences.", "",
        "| length (epochs) | WSD branch: test loss | cosine: test loss | WSD branch: test accuracy (%) | "
        "cosine: test accuracy (%) | optimizer steps: branch (own) / cosine |",
        "|---|---|---|---|---|---|",
    ]
    for length in lengths:
        b = [r for r in ended if r["approach"] == "WSD" and r["length"] == length]
        c = [r for r in ended if r["approach"] == "cosine" and r["length"] == length]
        lines.append(
            f"| {length} | {_claims.fmt([r['test_loss'] for r in b], 'test_loss')} | "
            f"{_claims.fmt([r['test_loss'] for r in c], 'test_loss')} | {_claims.fmt([r['test_acc'] for r in b], 'test_acc')} | "
            f"{_claims.fmt([r['test_acc'] for r in c], 'test_acc')} | {'/'.join(map(str, sorted({r['steps'] for r in b})))} / "
            f"{'/'.join(map(str, sorted({r['steps'] for r in c})))} |")
    w, c = spent["WSD"], spent["cosine"]
    lines += [
        "", f"Mean ± standard deviation over {len(seeds)} seeds.", "",
        "## Optimizer steps spent for all lengths", "",
        "| approach | steps (per seed, counted from the runs) | share of cosine |", "|---|---|---|",
        f"| WSD: stem ({'/'.join(map(str, sorted(set(stem))))} steps) + one cooldown branch per length | "
        f"{'/'.join(map(str, w))} | {w[0] / c[0]:.0%} |",
        f"| cosine: one run per length | {'/'.join(map(str, c))} | 100% |", "",
        f"LR of every step (stem + branch) against `WarmupStableDecay.lr_at` for the branch's length: "
        f"max abs difference {max(errors):.3g} over {len(errors)} branches.", "",
        "## Paired differences", "",
        "WSD branch − cosine per seed (loss: negative = branch better; accuracy: positive = branch better). \"Matches\" "
        "is reproduced when the 95% t interval of the mean difference lies inside "
        f"±{_claims.MATCH_MARGIN['test_loss']:g} in loss and ±{_claims.MATCH_MARGIN['test_acc']:g} points in accuracy "
        "(margins fixed before the runs).", "",
    ]
    pairs = [(f"WSD branch {n}", f"cosine {n}", "matches") for n in lengths]
    lines += _claims.pair_table(ended, "name", pairs)
    names = [f"{a} {n}" for n in lengths for a in ("WSD branch", "cosine")]
    lines += ["", "## Every seed", ""] + _claims.per_seed_table(ended, "name", names)
    lines += ["", "![LR curves, test loss per length and steps spent](cooldown_branches.png)", ""]
    return "\n".join(lines)


def plot(rows: list[dict], traces: dict[str, list[float]], lengths: list[int], path: Path) -> None:
    """Seed 0's LR curves, test loss per length (mean ± std) and the steps each approach spent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, n in enumerate(lengths):
        axes[0].plot(traces[f"cosine {n}"], color=f"C{i}", ls=":", lw=1, label=f"cosine {n}")
        axes[0].plot(traces[f"WSD {n}"], color=f"C{i}", label=f"WSD branch {n}")
    axes[0].plot(traces["stem"], color="k", lw=2.5, alpha=0.4, label="WSD stem (shared)")
    axes[0].set(title="LR of every step, seed 0", xlabel="step", ylabel="LR")
    axes[0].legend(fontsize=7)
    for j, approach in enumerate(("WSD", "cosine")):
        means, sds = zip(*[_claims.mean_std([r["test_loss"] for r in rows if r["approach"] == approach
                                            and r["length"] == n and r["test_loss"] != ""]) for n in lengths])
        axes[1].errorbar(np.array(lengths) + 0.15 * (j - 0.5), means, yerr=sds, marker="os"[j], capsize=3,
                         label="WSD branches" if approach == "WSD" else "cosine runs")
    axes[1].set(title="test loss (mean ± std over seeds)", xlabel="length (epochs)", ylabel="test loss")
    axes[1].legend(fontsize=8)
    seed0 = [r for r in rows if r["seed"] == 0]
    bottom = 0
    for r in [r for r in seed0 if r["approach"] == "WSD"]:
        axes[2].bar(0, r["steps"], bottom=bottom, color="k" if r["part"] == "stem" else f"C{lengths.index(r['length'])}")
        bottom += r["steps"]
    bottom = 0
    for r in [r for r in seed0 if r["approach"] == "cosine"]:
        axes[2].bar(1, r["steps"], bottom=bottom, color=f"C{lengths.index(r['length'])}", alpha=0.6)
        bottom += r["steps"]
    axes[2].set_xticks([0, 1], ["WSD: stem + branches", "cosine: a run per length"])
    axes[2].set(title="optimizer steps spent for all lengths (seed 0)", ylabel="steps")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = base_parser(__doc__, "results/cooldown_branches")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (full 10, quick 2)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="lengths in epochs (full 10 15 20, quick 5 6 8)")
    parser.add_argument("--branch-at", type=int, default=None, help="the stem's length in epochs (full 8, quick 4)")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 10)
    lengths = sorted(args.lengths or ([5, 6, 8] if args.quick else [10, 15, 20]))
    branch_at = args.branch_at if args.branch_at is not None else (4 if args.quick else 8)
    if seeds < 2 or not 1 <= branch_at <= (1 - DECAY) * lengths[0]:
        parser.error(f"need --seeds >= 2 and 1 <= --branch-at <= {1 - DECAY:g} x the shortest length (the stem must end "
                     f"before every branch's decay); got {seeds} and {branch_at} for lengths {lengths}")
    quiet()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows, traces = [], {}
    t0 = time.perf_counter()
    for seed in range(seeds):
        got, lrs = run_seed(seed, lengths, branch_at, args.quick)
        rows += got
        traces = traces or lrs
        done = [r for r in got if r["test_loss"] != ""]
        print(f"[{time.perf_counter() - t0:6.0f}s] seed {seed}: " + ", ".join(
            f"{_label(r)} {r['test_loss']:.4f}/{r['test_acc']:.3f}" for r in done), flush=True)
    steps = [{"curve": k, "step": i, "lr": lr} for k, v in traces.items() for i, lr in enumerate(v)]
    finish(args, "cooldown_branches", summarize(rows, lengths, branch_at, args.quick),
           {"runs.csv": rows, "lr_seed0.csv": steps}, lambda path: plot(rows, traces, lengths, path), t0)
    return rows


if __name__ == "__main__":
    main()
