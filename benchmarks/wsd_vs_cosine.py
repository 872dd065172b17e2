"""Warmup-stable-decay with a 1-sqrt cooldown vs cosine at an equal budget (Hägele et al. 2024), on MNIST-1D.

Hägele et al. (2024, *Scaling Laws and Compute-Optimal Training Beyond Fixed Training
Durations*) report that a constant LR followed by a short cooldown (20% of training) with the
``1-sqrt`` shape matches a cosine schedule to 10% of the peak at the same budget, and that
``1-sqrt`` does better than a linear cooldown. This trains, on the setup of
:mod:`benchmarks._claims`, with the same seeds and the same number of epochs:

* ``WSD 1-sqrt``: ``WarmupStableDecay(warmup=1, decay=0.2, decay_shape="1-sqrt")`` to 0;
* ``WSD linear``: the same with ``decay_shape="linear"``;
* ``cosine to 10%``: ``WarmupCosine(warmup=1, min_lr=0.1 * peak)``, the paper's baseline;
* ``cosine to 0``: ``WarmupCosine(warmup=1)``, lr-plugins' default shape.

Pairs judged (see :mod:`benchmarks._claims` for the rule): WSD 1-sqrt *matches* cosine to
10%; WSD 1-sqrt *matches* cosine to 0; WSD 1-sqrt *beats* WSD linear.

Run ``python -m benchmarks.wsd_vs_cosine`` (full: 10 seeds x 10 epochs) or ``--quick`` (2 seeds,
3 epochs over a few batches: a smoke run, not evidence). Writes ``runs.csv``, ``lr_seed0.csv``,
``summary.md`` and ``wsd_vs_cosine.png`` into ``results/wsd_vs_cosine/``; the full mode also
writes ``docs/wsd_vs_cosine.{md,png}``.
"""

from __future__ import annotations

from benchmarks import _equal_budget

__all__ = ["SCHEDULES", "PAIRS", "main"]


def _wsd(shape: str, peak: float):
    from lr_plugins import WarmupStableDecay

    return WarmupStableDecay(max_lr=peak, min_lr=0.0, warmup=1, decay=0.2, decay_shape=shape)


def _cosine(floor: float, peak: float):
    from lr_plugins import WarmupCosine

    return WarmupCosine(max_lr=peak, min_lr=floor * peak, warmup=1)


SCHEDULES = {
    "WSD 1-sqrt": ("`WarmupStableDecay(warmup=1, decay=0.2, decay_shape=\"1-sqrt\")`, to 0", lambda peak: _wsd("1-sqrt", peak)),
    "WSD linear": ("the same, `decay_shape=\"linear\"`", lambda peak: _wsd("linear", peak)),
    "cosine to 10%": ("`WarmupCosine(warmup=1, min_lr=0.1 * peak)`", lambda peak: _cosine(0.1, peak)),
    "cosine to 0": ("`WarmupCosine(warmup=1)`", lambda peak: _cosine(0.0, peak)),
}
PAIRS = [("WSD 1-sqrt", "cosine to 10%", "matches"), ("WSD 1-sqrt", "cosine to 0", "matches"),
         ("WSD 1-sqrt", "WSD linear", "beats")]
CLAIM = ("a constant LR with a cooldown over the last 20% of training in the 1-sqrt shape matches a cosine schedule "
         "to 10% of the peak at the same budget, and the 1-sqrt cooldown beats a linear one (Hägele et al. 2024, "
         "*Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations*; language models up to 360M "
         "parameters, validation perplexity).")


def main(argv: list[str] | None = None) -> list[dict]:
    return _equal_budget.main(argv, "wsd_vs_cosine", __doc__, "WSD (1-sqrt cooldown) vs cosine at an equal budget",
                              CLAIM, SCHEDULES, PAIRS)


if __name__ == "__main__":
    main()
