"""Overhead of an lr-plugins schedule callback vs. the torch LambdaLR path, on Trainer.fit wall time.

Three ways to train the same tiny model for ``--steps`` optimizer steps, interleaved in rounds
(the order is shuffled every round) so that drifts of a shared CPU hit all three alike:

* ``none``:  no schedule (the LR stays constant), nothing logs the LR;
* ``ours``:  ``WarmupCosine(unit="step")`` as a callback; it sets the LR of every optimizer step
  and logs it to TensorBoard every step (LearningRateMonitor's tag ``lr-SGD``);
* ``torch``: the same curve as ``torch.optim.lr_scheduler.LambdaLR`` returned from
  ``configure_optimizers`` with ``interval="step"``, plus
  ``LearningRateMonitor(logging_interval="step")`` and ``Trainer(log_every_n_steps=1)``: the
  same work, the LR set and logged every step.

All three log to a TensorBoardLogger. Printed: the median fit time of each, the medians of the
per-round ratios ours/torch, ours/none and torch/none, the cost of one ``lr_at`` call, and the
callback's whole cost per optimizer step inside ``fit`` (the median fit time of ``ours`` minus that
of ``none``, over the steps: compute, write into the param groups, log), in µs. Public API only.

Run::

    python -m benchmarks.schedule_overhead                 # 2000 steps x 7 rounds
    python -m benchmarks.schedule_overhead --quick         # 300 steps x 2 rounds, a smoke test
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
import timeit

from benchmarks._common import quiet

__all__ = ["main", "run_fit", "lr_at_cost"]

MAX_LR, WARMUP = 0.05, 100


def _module_class():
    import lightning.pytorch as L
    import torch
    from torch import nn

    class Tiny(L.LightningModule):
        """A small MLP regression; optionally returns a LambdaLR with the warmup-cosine curve."""

        def __init__(self, total: int, torch_schedule: bool):
            super().__init__()
            self.total, self.torch_schedule = total, torch_schedule
            self.net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=MAX_LR, momentum=0.9)
            if not self.torch_schedule:
                return opt
            total = self.total

            def factor(k: int) -> float:  # WarmupCosine(warmup=WARMUP, unit="step"), hand-written
                if k < WARMUP:
                    return k / WARMUP
                p = min((k - WARMUP) / (total - WARMUP), 1.0)
                return (1 + math.cos(math.pi * p)) / 2

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return Tiny


def _loader(batches: int = 250, batch_size: int = 16):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batches * batch_size, 16, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=batch_size)


def run_fit(variant: str, steps: int, root: str) -> float:
    """Wall time (s) of one ``Trainer.fit`` of ``steps`` optimizer steps with ``variant``."""
    import lightning.pytorch as L
    import torch
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import TensorBoardLogger

    from lr_plugins import WarmupCosine

    callbacks: list = []
    if variant == "ours":
        callbacks.append(WarmupCosine(max_lr=MAX_LR, warmup=WARMUP, unit="step"))
    elif variant == "torch":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    trainer = L.Trainer(
        max_steps=steps, max_epochs=-1, callbacks=callbacks, accelerator="cpu", devices=1,
        logger=TensorBoardLogger(root, name=variant), log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    torch.manual_seed(0)
    model = _module_class()(total=steps, torch_schedule=variant == "torch")
    loader = _loader()
    t0 = time.perf_counter()
    trainer.fit(model, loader)
    return time.perf_counter() - t0


def lr_at_cost(number: int = 20000) -> dict[str, float]:
    """Microseconds per call of the public ``lr_at`` (with its checks)."""
    from lr_plugins import WarmupCosine

    s = WarmupCosine(max_lr=MAX_LR, warmup=WARMUP, unit="step")
    return {"lr_at_us": min(timeit.repeat(lambda: s.lr_at(1234, 2000), number=number, repeat=5)) / number * 1e6}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps per fit (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--quick", action="store_true", help="300 steps x 2 rounds: checks that it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 300, 2
    quiet()
    variants = ["none", "ours", "torch"]
    times: dict[str, list[float]] = {v: [] for v in variants}
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as root:
        run_fit("ours", 200, root)  # warm-up: imports, first TensorBoard writer
        run_fit("torch", 200, root)
        for r in range(args.rounds):
            order = variants[:]
            rng.shuffle(order)
            for v in order:
                times[v].append(run_fit(v, args.steps, root))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{v} {times[v][-1]:.2f}s" for v in variants), flush=True)

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    cost = lr_at_cost()
    result = {
        "steps": args.steps,
        "rounds": args.rounds,
        **{f"median_s_{v}": statistics.median(times[v]) for v in variants},
        "ours/torch": ratio("ours", "torch"),
        "ours/none": ratio("ours", "none"),
        "torch/none": ratio("torch", "none"),
        **cost,
    }
    # The callback's whole cost per optimizer step inside fit (compute, write, log), through the public API only.
    result["step_us"] = (result["median_s_ours"] - result["median_s_none"]) / args.steps * 1e6
    print()
    print(f"Trainer.fit, {args.steps} optimizer steps, median of {args.rounds} interleaved rounds")
    print("| variant | median fit time (s) |")
    print("|---|---|")
    for v in variants:
        print(f"| {v} | {result[f'median_s_{v}']:.2f} |")
    print()
    print("| ratio (median of per-round ratios) | value |")
    print("|---|---|")
    for k in ("ours/torch", "ours/none", "torch/none"):
        print(f"| {k} | {result[k]:.3f} |")
    print()
    print(f"one lr_at call: {cost['lr_at_us']:.2f} µs; the callback's cost per optimizer step in Trainer.fit "
          f"(median ours - median none, logging every step included): {result['step_us']:.1f} µs")
    return result


if __name__ == "__main__":
    main()
