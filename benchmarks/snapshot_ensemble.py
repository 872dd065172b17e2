"""Snapshot ensembles on MNIST-1D: SGDR with M cycles (final model and ensemble) vs WarmupCosine.

For each model and seed, with the same total epoch budget ``E`` and the same optimizer
(SGD, lr 0.1, Nesterov momentum 0.9, weight decay 5e-4, batch 64):

* ``SGDR M=k``: ``SGDR(cycle_length=E/k)`` (no warmup, LR to 0 at every cycle end) with
  ``SnapshotEnsemble()``; reports the final model (= the last snapshot), the ensemble of all
  ``k`` snapshots (the callback's ``test/ensemble_acc``) and of the last 3;
* ``WarmupCosine``: one cosine decay over ``E`` epochs after a 1-epoch warmup.

The default CNN of the package reaches ~99% on MNIST-1D, where nothing can be told apart, so
this uses two smaller budgets: an MLP (2x128, 30 epochs; the MNIST-1D paper's MLP gets 68%)
and a residual CNN with 8 channels and 2 blocks (15 epochs).

Run ``python -m benchmarks.snapshot_ensemble`` (full: M = 3..6, 5 seeds, both models,
about 5 minutes on 2 cores) or ``--quick`` (M = 3 and 6, 1 seed). Writes ``runs.csv``,
``summary.md`` and ``snapshot_ensemble.png`` into ``results/snapshot_ensemble/``; the full
mode also copies the table and plot to ``docs/snapshot_ensemble.{md,png}``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._common import base_parser, finish, make_trainer, quiet

__all__ = ["run_one", "main"]

MODELS = {
    "mlp": {"label": "MLP 2x128, 30 epochs", "epochs": 30},
    "cnn": {"label": "CNN1D 8 ch x 2 blocks, 15 epochs", "epochs": 15},
}


def _net(model: str):
    from lr_plugins.app.models import CNN1D, MLP

    return MLP(in_features=40, hidden=128, depth=2) if model == "mlp" else CNN1D(channels=8, blocks=2)


def run_one(model: str, cycles: int, seed: int) -> dict:
    """Train one run; ``cycles=0`` means WarmupCosine. Returns the test metrics."""
    import lightning.pytorch as L

    from lr_plugins import SGDR, SnapshotEnsemble, WarmupCosine
    from lr_plugins.app.data import MNIST1DDataModule
    from lr_plugins.app.models import Classifier
    from lr_plugins.snapshot import evaluate_ensemble, load_snapshot

    epochs = MODELS[model]["epochs"]
    L.seed_everything(seed, verbose=False)
    module = Classifier(_net(model), lr=0.1, momentum=0.9, weight_decay=5e-4)
    dm = MNIST1DDataModule(batch_size=64, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        snap = SnapshotEnsemble(dirpath=tmp, verbose=False)
        callbacks = [SGDR(cycle_length=epochs / cycles), snap] if cycles else [WarmupCosine(warmup=1)]
        trainer = make_trainer(epochs, callbacks, tmp, num_sanity_val_steps=2)  # Lightning's default sanity check
        t0 = time.perf_counter()
        trainer.fit(module, dm)
        seconds = time.perf_counter() - t0
        (res,) = trainer.test(module, dm, verbose=False)
        row = {
            "model": model, "cycles": cycles, "seed": seed, "epochs": epochs, "fit_seconds": round(seconds, 2),
            "single_acc": res["test/acc"], "single_loss": res["test/loss"],
        }
        if cycles:
            assert len(snap.records) == cycles, snap.records
            row["ensemble_acc"] = res["test/ensemble_acc"]
            row["ensemble_loss"] = res["test/ensemble_loss"]
            last = [load_snapshot(p)["state_dict"] for p in snap.paths[-3:]]
            x, y = dm.test_dataloader().dataset.tensors
            row["last3_acc"] = evaluate_ensemble(module.eval(), last, lambda: [(x, y)])["acc"]
    return row


def _stats(values: list[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * sd:.2f} ({100 * min(values):.1f}–{100 * max(values):.1f})"


def summarize(rows: list[dict]) -> str:
    """A markdown table per model: test accuracy (%) mean ± std and min–max over seeds."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        seeds = len({r["seed"] for r in mine})
        lines += [
            f"**{MODELS[model]['label']}**: MNIST-1D test accuracy (%), {seeds} seed(s), mean ± std (min–max); "
            "test NLL of the final model → of the ensemble of all M",
            "",
            "| schedule | final model | ensemble of all M snapshots | ensemble of the last 3 | NLL final → ensemble |",
            "|---|---|---|---|---|",
        ]
        cos = [r["single_acc"] for r in mine if r["cycles"] == 0]
        if cos:
            nll = statistics.fmean(r["single_loss"] for r in mine if r["cycles"] == 0)
            lines.append(f"| WarmupCosine (one decay) | {_stats(cos)} | – | – | {nll:.3f} |")
        for m in sorted({r["cycles"] for r in mine if r["cycles"]}):
            rs = [r for r in mine if r["cycles"] == m]
            cells = [_stats([r[k] for r in rs]) for k in ("single_acc", "ensemble_acc", "last3_acc")]
            nll = [statistics.fmean(r[k] for r in rs) for k in ("single_loss", "ensemble_loss")]
            lines.append(f"| SGDR, M = {m} cycles | " + " | ".join(cells) + f" | {nll[0]:.3f} → {nll[1]:.3f} |")
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        ms = sorted({r["cycles"] for r in mine if r["cycles"]})
        for key, label, marker in [("single_acc", "SGDR final model", "o"), ("ensemble_acc", "SGDR ensemble (all M)", "s"),
                                   ("last3_acc", "SGDR ensemble (last 3)", "^")]:
            vals = [[100 * r[key] for r in mine if r["cycles"] == m] for m in ms]
            means = [statistics.fmean(v) for v in vals]
            sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in vals]
            ax.errorbar(ms, means, yerr=sds, marker=marker, capsize=3, label=label)
        cos = [100 * r["single_acc"] for r in mine if r["cycles"] == 0]
        if cos:
            mu, sd = statistics.fmean(cos), statistics.stdev(cos) if len(cos) > 1 else 0.0
            ax.axhline(mu, color="k", ls="--", label="WarmupCosine (same budget)")
            ax.axhspan(mu - sd, mu + sd, color="k", alpha=0.1)
        ax.set(title=MODELS[model]["label"], xlabel="M (SGDR cycles)", ylabel="test accuracy (%)", xticks=ms)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    args = base_parser(__doc__, "results/snapshot_ensemble").parse_args(argv)
    quiet()
    cycles = [3, 6] if args.quick else [3, 4, 5, 6]
    seeds = [0] if args.quick else [0, 1, 2, 3, 4]
    rows = []
    t0 = time.perf_counter()
    for model in MODELS:
        for seed in seeds:
            for m in [0, *cycles]:
                rows.append(run_one(model, m, seed))
                r = rows[-1]
                extra = f" ensemble {r['ensemble_acc']:.3f} last3 {r['last3_acc']:.3f}" if m else ""
                print(f"[{time.perf_counter() - t0:6.0f}s] {model} seed {seed} "
                      f"{'SGDR M=' + str(m) if m else 'WarmupCosine'}: final {r['single_acc']:.3f}{extra}", flush=True)
    finish(args, "snapshot_ensemble", summarize(rows), {"runs.csv": rows}, lambda path: plot(rows, path), t0)
    return rows


if __name__ == "__main__":
    main()
