"""The LR range test loop (Smith, 2017): real training steps at an increasing LR.

Optimizer step ``k`` (``k = 0 .. num_steps - 1``) uses

* ``exponential``: ``lr_k = min_lr * (max_lr / min_lr) ** (k / (num_steps - 1))``,
* ``linear``: ``lr_k = min_lr + (max_lr - min_lr) * k / (num_steps - 1)``,

in the first param group and ``lr_k * lr_i / lr_0`` in group ``i`` (the configured ratios). Each
step runs the module's own ``training_step`` through the Trainer's strategy (so DDP syncs
gradients), its backward through the strategy (precision plugin, AMP scaling), the Trainer's
gradient clipping and ``optimizer.step()``. With ``accumulate_grad_batches = a`` a step covers
``a`` batches and records their mean loss. Under DDP that loss is averaged over the ranks at every
step, so every rank sees the same curve, stops at the same step and picks the same LR.

The test stops at once when a loss is not finite (that step is neither taken nor recorded), or
after recording step ``k`` when the causal bias-corrected EMA

    ``avg_k = beta avg_{k-1} + (1 - beta) loss_k``,  ``ema_k = avg_k / (1 - beta^(k+1))``

exceeds ``diverge_threshold * min(ema_0 .. ema_k)``. ``k`` is the test's own step count, never
the Trainer's ``global_step``, so a test that starts mid-training behaves like one at step 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["ramp", "DivergenceMonitor", "RangeTestCurve", "run_range_test"]


def ramp(min_lr: float, max_lr: float, num_steps: int, mode: str = "exponential") -> np.ndarray:
    """The LR of each of the ``num_steps`` steps of the test.

    Example:
        >>> ramp(1e-3, 1.0, 4).round(6).tolist()
        [0.001, 0.01, 0.1, 1.0]
        >>> ramp(0.0, 3.0, 4, "linear").tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    t = np.arange(num_steps) / max(num_steps - 1, 1)
    if mode == "exponential":
        return min_lr * (max_lr / min_lr) ** t
    return min_lr + (max_lr - min_lr) * t


class DivergenceMonitor:
    """The causal bias-corrected EMA and the divergence rule (see the module docstring).

    Example:
        >>> m = DivergenceMonitor(threshold=4.0, beta=0.0)
        >>> [m.update(v) for v in (2.0, 1.0, 3.9, 4.1)]
        [False, False, False, True]
    """

    def __init__(self, threshold: float, beta: float = 0.9):
        self.threshold, self.beta = threshold, beta
        self.avg, self.count, self.best = 0.0, 0, math.inf
        self.history: list[float] = []

    def update(self, loss: float) -> bool:
        """Add one loss; return whether the smoothed loss has diverged."""
        self.avg = self.beta * self.avg + (1.0 - self.beta) * loss
        self.count += 1
        smoothed = self.avg / (1.0 - self.beta**self.count)
        self.history.append(smoothed)
        self.best = min(self.best, smoothed)
        return smoothed > self.threshold * self.best


@dataclass
class RangeTestCurve:
    """What the loop recorded."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    ema: list[float] = field(default_factory=list)
    stop_reason: str = "completed"
    steps: int = 0


def _batches(iterables: Any) -> Iterator[tuple[Any, int]]:
    """``(batch, batch_idx)`` forever, starting the train dataloader(s) again when they run out."""
    combined = isinstance(iterables, (list, tuple, dict))
    if combined:
        from lightning.pytorch.utilities import CombinedLoader

        source: Any = CombinedLoader(iterables, "max_size_cycle")
    else:
        source = iterables
    while True:
        empty = True
        for i, item in enumerate(source):
            empty = False
            yield (item[0] if combined else item), i
        if empty:
            raise ValueError("The train dataloader yielded no batch: the LR range test needs training batches.")


_SILENCED = ("log", "log_dict")


def _no_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``self.log`` / ``self.log_dict`` during the test."""


def _loss_of(output: Any) -> torch.Tensor | None:
    if isinstance(output, Mapping):
        output = output.get("loss")
    if output is None:
        return None
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"training_step returned {type(output).__name__}; the LR finder needs a loss tensor (or a dict with "
            "'loss', or None to skip the batch)."
        )
    return output


def run_range_test(
    trainer: Any,
    module: Any,
    lrs: np.ndarray,
    diverge_threshold: float,
    beta: float = 0.9,
) -> RangeTestCurve:
    """Run the test's training steps (the caller snapshots and restores the state around it).

    Args:
        trainer: A Trainer inside ``fit`` (strategy set up, optimizers built).
        module: Its LightningModule.
        lrs: The LR of each step (:func:`ramp`).
        diverge_threshold: Stop when the EMA exceeds this multiple of its best value.
        beta: The EMA's decay.
    """
    strategy = trainer.strategy
    optimizer = trainer.optimizers[0]
    groups = optimizer.param_groups
    base = [float(g["lr"]) for g in groups]
    ratios = [b / base[0] if base[0] > 0 else 1.0 for b in base]
    accumulate = int(trainer.accumulate_grad_batches)
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    monitor = DivergenceMonitor(diverge_threshold, beta)
    curve = RangeTestCurve(ema=monitor.history)  # the EMA of every recorded step
    batches = _batches(trainer.train_dataloader)
    # The module's self.log would need the fit loop's result collection; the test logs nothing.
    # Instance attributes the module had under these names are put back exactly afterwards.
    own = {name: vars(module)[name] for name in _SILENCED if name in vars(module)}
    for name in _SILENCED:
        vars(module)[name] = _no_log
    try:
        module.train()
        optimizer.zero_grad(set_to_none=True)
        for lr in lrs:
            for g, r in zip(groups, ratios):
                g["lr"] = float(lr) * r
            window = []
            for _ in range(accumulate):
                batch, idx = next(batches)
                batch = strategy.batch_to_device(batch)
                loss = _loss_of(strategy.training_step(batch, idx))
                if loss is None:
                    continue
                window.append(loss.detach().float())
                # No host sync on the loss here: a non-finite loss makes the step's value non-finite
                # below and the step is not taken; its gradients are discarded by the restore. Every
                # rank runs backward, so DDP's gradient all-reduce never waits for a rank that skipped.
                strategy.backward(loss / accumulate, optimizer)
            local = torch.stack(window).mean() if window else torch.tensor(float("nan"))
            value = float(strategy.reduce(local.to(strategy.root_device), reduce_op="mean"))
            curve.steps += 1
            if not math.isfinite(value):
                curve.stop_reason = "non-finite"
                break
            if scaler is not None:
                scaler.unscale_(optimizer)
            module.configure_gradient_clipping(
                optimizer, gradient_clip_val=trainer.gradient_clip_val, gradient_clip_algorithm=trainer.gradient_clip_algorithm
            )
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            diverged = monitor.update(value)
            curve.lrs.append(float(lr))
            curve.losses.append(value)
            if diverged:
                curve.stop_reason = "diverged"
                break
    finally:
        batches.close()
        for name in _SILENCED:
            if name in own:
                vars(module)[name] = own[name]
            else:
                vars(module).pop(name, None)
    return curve
