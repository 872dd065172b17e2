"""One progress line per epoch, for runs whose output is not a terminal (log files, SLURM).

Lightning's progress bar redraws itself many times a second; written to a file that is ~250 KB
per default ``lr-train`` run. ``lr-train`` replaces it with :class:`EpochLines` when standard
output is not a TTY: at the end of every training epoch (after its validation) rank 0 prints::

    epoch 3/20  step 228  lr 0.0812  train/loss 0.41  val/loss 0.38  val/acc 0.912  4.1 s

i.e. the epoch (1-based) of ``max_epochs``, the optimizer step, the LR of the first param group
of the first optimizer, the epoch-level metrics the module logged, and the seconds the epoch took.
"""

from __future__ import annotations

import math
import time

import lightning.pytorch as L

__all__ = ["EpochLines"]


class EpochLines(L.Callback):
    """Print one line per training epoch on rank 0 (a progress bar for logs).

    Example:
        >>> trainer = L.Trainer(enable_progress_bar=False, callbacks=[EpochLines()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        print(self.line(trainer, time.perf_counter() - self._start), flush=True)

    @staticmethod
    def line(trainer: L.Trainer, seconds: float) -> str:
        """The line for the epoch that just ended."""
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        parts = [f"epoch {trainer.current_epoch + 1}/{total}", f"step {trainer.global_step}"]
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.4g}")
        for key, value in sorted(trainer.callback_metrics.items()):
            v = float(value)
            if value.numel() == 1 and math.isfinite(v) and not key.endswith("_step"):
                parts.append(f"{key} {v:.4g}")
        parts.append(f"{seconds:.1f} s")
        return "  ".join(parts)
