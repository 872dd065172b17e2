"""Linear decay to zero vs cosine to 10% of the peak (Bergsma et al. 2025), on MNIST-1D.

Bergsma et al. (2025, *Straight to Zero: Why Linearly Decaying the Learning Rate to Zero Works
Best for LLMs*) report that a linear decay to zero (after a warmup) gives a lower loss than the
common cosine decay to 10% of the peak, at the same budget; part of the gain comes from going
to zero, part from the linear shape. This trains, on the setup of :mod:`benchmarks._claims`,
with the same seeds and the same number of epochs:

* ``linear to 0``: ``PolynomialDecay(warmup=1, power=1, min_lr=0)`` (the preset ``linear``);
* ``cosine to 10%``: ``WarmupCosine(warmup=1, min_lr=0.1 * peak)``;
* ``cosine to 0``: ``WarmupCosine(warmup=1)``, which separates "to zero" from "linear".

Pairs judged (see :mod:`benchmarks._claims` for the rule): linear to 0 *beats* cosine to 10%;
cosine to 0 *beats* cosine to 10% (the floor); linear to 0 *beats* cosine to 0 (the shape).

Run ``python -m benchmarks.linear_to_zero`` (full: 10 seeds x 10 epochs) or ``--quick`` (2 seeds,
3 epochs over a few batches: a smoke run, not evidence). Writes ``runs.csv``, ``lr_seed0.csv``,
``summary.md`` and ``linear_to_zero.png`` into ``results/linear_to_zero/``; the full mode also
writes ``docs/linear_to_zero.{md,png}``.
"""

from __future__ import annotations

from benchmarks import _equal_budget

__all__ = ["SCHEDULES", "PAIRS", "main"]


def _linear(peak: float):
    from lr_plugins import PolynomialDecay

    return PolynomialDecay(max_lr=peak, min_lr=0.0, warmup=1, power=1.0)


def _cosine(floor: float, peak: float):
    from lr_plugins import WarmupCosine

    return WarmupCosine(max_lr=peak, min_lr=floor * peak, warmup=1)


SCHEDULES = {
    "linear to 0": ("`PolynomialDecay(warmup=1, power=1, min_lr=0)`", _linear),
    "cosine to 10%": ("`WarmupCosine(warmup=1, min_lr=0.1 * peak)`", lambda peak: _cosine(0.1, peak)),
    "cosine to 0": ("`WarmupCosine(warmup=1)`", lambda peak: _cosine(0.0, peak)),
}
PAIRS = [("linear to 0", "cosine to 10%", "beats"), ("cosine to 0", "cosine to 10%", "beats"),
         ("linear to 0", "cosine to 0", "beats")]
CLAIM = ("a linear decay to zero beats a cosine decay to 10% of the peak at the same budget (Bergsma et al. 2025, "
         "*Straight to Zero: Why Linearly Decaying the Learning Rate to Zero Works Best for LLMs*; language models "
         "of 111M to 1.7B parameters, AdamW, validation loss).")


def main(argv: list[str] | None = None) -> list[dict]:
    return _equal_budget.main(argv, "linear_to_zero", __doc__, "Linear decay to zero vs cosine to 10%", CLAIM,
                              SCHEDULES, PAIRS)


if __name__ == "__main__":
    main()
