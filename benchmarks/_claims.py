"""The setup, training run and statistics shared by the schedule-claim benchmarks.

``wsd_vs_cosine``, ``linear_to_zero`` and ``cooldown_branches`` check published claims about LR
schedules on one fixed setup, chosen before any of their runs so that a run takes a few seconds
on one CPU core and the model is not saturated (a cosine run ends near 95%, not 99%, so the
schedule can show):

* MNIST-1D (3600 train / 1000 test sequences; the 400 validation sequences are not used);
* the app's residual ``CNN1D`` with 8 channels and 2 blocks;
* AdamW, peak LR 0.01, weight decay 0.1 (the optimizer of both papers), batch 64;
* every schedule warms up linearly from 0 over the first epoch.

A seed fixes the initial weights and the batch order, so the schedules are compared run for run
(paired). The claims are about the loss, so the primary metric is the **test loss**
(cross-entropy of the final model); the test accuracy is reported beside it.

Statistics: mean ± sample standard deviation over seeds, and for a pair of schedules the paired
difference per seed, its mean ± std and a 95% t confidence interval of the mean. A verdict
reads the interval: "A beats B" is reproduced when the interval lies on A's better side of 0;
"A matches B" when it lies inside ``±margin`` (:data:`MATCH_MARGIN`, fixed before the runs).

Example:
    >>> mean_std([1.0, 2.0, 3.0])
    (2.0, 1.0)
    >>> verdict([-0.1, -0.2, -0.15], "beats", "test_loss")
    'reproduced'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import LRTrace, make_trainer

__all__ = [
    "PEAK_LR",
    "SETUP",
    "setup",
    "METRICS",
    "MATCH_MARGIN",
    "QUICK_TRAINER",
    "build",
    "StopAfter",
    "train",
    "mean_std",
    "paired",
    "verdict",
    "fmt",
    "per_seed_table",
    "pair_table",
]

PEAK_LR = 0.01


def setup(peak: float = PEAK_LR) -> str:
    """The setup in words, for the report pages."""
    return ("MNIST-1D (3600 train / 1000 test sequences), residual CNN1D (8 channels, 2 blocks), AdamW "
            f"(peak LR {peak:g}, weight decay 0.1), batch 64, a linear warmup from 0 over the first epoch")


SETUP = setup()
#: metric -> (label, scale for the table, digits, lower is better)
METRICS = {"test_loss": ("test loss", 1.0, 4, True), "test_acc": ("test accuracy (%)", 100.0, 2, False)}
#: "A matches B" holds when the 95% interval of the paired difference lies inside +-margin (table units).
MATCH_MARGIN = {"test_loss": 0.02, "test_acc": 0.5}
#: ``--quick``: a smoke run over a few batches; it checks the plumbing and is not evidence.
QUICK_TRAINER = {"limit_train_batches": 6, "limit_test_batches": 2}


def build(seed: int, peak: float = PEAK_LR):
    """The model and data of the setup, with ``seed`` fixing the initial weights and the batch order."""
    import lightning.pytorch as L

    from lr_plugins.app.data import MNIST1DDataModule
    from lr_plugins.app.models import CNN1D, Classifier

    L.seed_everything(seed, verbose=False)
    model = Classifier(CNN1D(channels=8, blocks=2), optimizer="adamw", lr=peak, weight_decay=0.1)
    return model, MNIST1DDataModule(batch_size=64, seed=seed)


def _callback_base() -> type:
    from lightning.pytorch.callbacks import Callback

    return Callback


class StopAfter(_callback_base()):
    """Ends ``fit`` after ``epochs`` epochs, whatever ``max_epochs`` says (the schedule still plans for
    ``max_epochs``): how a run is stopped in its stable phase to branch cooldowns from it."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def train(schedule: Any, epochs: int, seed: int, root: str | Path, *, quick: bool = False,
          ckpt_path: str | None = None, stop_after: int | None = None, save_to: str | Path | None = None,
          peak: float = PEAK_LR) -> dict[str, Any]:
    """One run: fit ``epochs`` epochs under ``schedule`` (a fresh callback), then test.

    ``ckpt_path`` resumes from a checkpoint (a cooldown branch); ``stop_after`` ends the fit early
    and skips the test; ``save_to`` writes a checkpoint at the end of the fit; ``peak`` is the
    optimizer's LR (give the schedule the same ``max_lr``).

    Returns:
        ``{"steps", "first_step", "lrs", "steps_per_epoch", "total_steps", "fit_seconds"}`` and,
        unless stopped early, ``"test_loss"`` and ``"test_acc"``. ``steps`` counts the optimizer
        steps this call ran (a branch: only its own), ``lrs`` the LR of each of them.
    """
    model, dm = build(seed, peak)
    trace = LRTrace()
    callbacks = [schedule, trace] + ([StopAfter(stop_after)] if stop_after else [])
    trainer = make_trainer(epochs, callbacks, root, limit_val_batches=0, **(QUICK_TRAINER if quick else {}))
    t0 = time.perf_counter()
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    out: dict[str, Any] = {"steps": len(trace.lrs), "first_step": trainer.global_step - len(trace.lrs), "lrs": trace.lrs,
                           "steps_per_epoch": schedule.fit_steps_per_epoch, "total_steps": schedule.fit_total_steps,
                           "fit_seconds": round(time.perf_counter() - t0, 2)}
    if save_to is not None:
        trainer.save_checkpoint(str(save_to))
    if stop_after is None:
        (res,) = trainer.test(model, dm, verbose=False)
        out.update(test_loss=float(res["test/loss"]), test_acc=float(res["test/acc"]))
    return out


# ---------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value).

    Example:
        >>> mean_std([0.5])
        (0.5, 0.0)
    """
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """The per-seed differences ``a - b``: mean, std, the 95% t interval of the mean, and counts.

    Example:
        >>> d = paired([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])
        >>> d["mean"], d["std"], (d["a_higher"], d["equal"], d["a_lower"])
        (2.0, 1.0, (3, 0, 0))
    """
    from scipy import stats

    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, sd = mean_std(diffs)
    half = float(stats.t.ppf(0.975, diffs.size - 1)) * sd / math.sqrt(diffs.size) if diffs.size > 1 else math.inf
    return {"mean": mean, "std": sd, "lo": mean - half, "hi": mean + half, "n": int(diffs.size),
            "a_higher": int((diffs > 0).sum()), "equal": int((diffs == 0).sum()), "a_lower": int((diffs < 0).sum())}


def verdict(diffs: Sequence[float], claim: str, metric: str) -> str:
    """``reproduced``, ``not reproduced (...)`` or ``not separated`` for the claim "A beats B" or
    "A matches B" on ``metric``, from the per-seed differences A - B (in table units).

    Example:
        >>> verdict([0.1, -0.1, 0.05, 0.0], "matches", "test_acc")
        'reproduced'
        >>> verdict([1.0, 1.2, 0.9], "matches", "test_acc")
        'not reproduced (A is better)'
    """
    d = paired(diffs, [0.0] * len(diffs))
    lower_better = METRICS[metric][3]
    better = (lambda x: x < 0) if lower_better else (lambda x: x > 0)
    if claim == "beats":
        if better(d["lo"]) and better(d["hi"]):
            return "reproduced"
        if better(-d["lo"]) and better(-d["hi"]):
            return "not reproduced (B is better)"
        return "not separated (the 95% interval holds 0)"
    if claim == "matches":
        m = MATCH_MARGIN[metric]
        if -m <= d["lo"] and d["hi"] <= m:
            return "reproduced"
        if d["lo"] > m or d["hi"] < -m:
            return f"not reproduced ({'A' if better(d['mean']) else 'B'} is better)"
        return f"inconclusive (the 95% interval reaches past ±{m:g})"
    raise ValueError(f"claim={claim!r} is not allowed: claim must be 'beats' or 'matches'.")


def fmt(values: Sequence[float], metric: str) -> str:
    """``mean ± std`` of ``values`` in table units."""
    _, scale, digits, _ = METRICS[metric]
    m, s = mean_std([scale * v for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def per_seed_table(rows: list[dict], group: str, names: Sequence[str]) -> list[str]:
    """One line per ``names`` entry: both metrics per seed (markdown)."""
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for metric, (label, scale, digits, _) in METRICS.items():
        for name in names:
            by_seed = {r["seed"]: r[metric] for r in rows if r[group] == name}
            lines.append(f"| {name}: {label} | " + " | ".join(f"{scale * by_seed[s]:.{digits}f}" for s in seeds) + " |")
    return lines


def pair_table(rows: list[dict], group: str, pairs: Sequence[tuple[str, str, str]],
               describe: Callable[[str, str], str] = lambda a, b: f"{a} − {b}") -> list[str]:
    """The paired differences A - B per metric, with their verdicts; ``pairs`` holds ``(A, B, claim)``."""
    lines = ["| difference (paired by seed) | metric | mean ± std | 95% interval | seeds A higher / equal / lower | claim | verdict |",
             "|---|---|---|---|---|---|---|"]
    for a, b, claim in pairs:
        for metric, (label, scale, digits, _) in METRICS.items():
            va = {r["seed"]: scale * r[metric] for r in rows if r[group] == a}
            vb = {r["seed"]: scale * r[metric] for r in rows if r[group] == b}
            seeds = sorted(set(va) & set(vb))
            diffs = [va[s] - vb[s] for s in seeds]
            d = paired([va[s] for s in seeds], [vb[s] for s in seeds])
            lines.append(f"| {describe(a, b)} | {label} | {d['mean']:+.{digits}f} ± {d['std']:.{digits}f} | "
                         f"[{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}] | {d['a_higher']} / {d['equal']} / {d['a_lower']} | "
                         f"A {claim} B | {verdict(diffs, claim, metric)} |")
    return lines
