"""One progress line per epoch, for runs whose output is not a terminal (log files, SLURM).

Lightning's progress bar redraws itself many times a second; written to a file that is ~250 KB
per default ``lr-train`` run. ``lr-train`` replaces it with :class:`EpochLines` when standard
output is not a TTY: at the end of every training epoch (after its validation) rank 0 prints::

    epoch 3/20  step 228  lr 0.0812  train/loss 0.41  val/loss 0.38  val/acc 0.912  4.1 s

i.e. the epoch (1-based) of ``max_epochs``, the optimizer steps taken, ``lr``: the LR the last
optimizer step of the epoch used (first param group of the first optimizer, read right before
that step, the value ``LearningRateMonitor`` logs for it), the epoch-level metrics the module
logged, and the seconds the epoch took. The ``lr-*`` series a schedule or ``LearningRateMonitor``
logs are left out of the line: they are samples every ``log_every_n_steps`` steps, so the last
one is usually an older step's LR, and ``lr`` already says it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning.pytorch as L

__all__ = ["EpochLines"]


class EpochLines(L.Callback):
    """Print one line per training epoch on rank 0 (a progress bar for logs).

    Its ``lr`` is the LR of the epoch's last optimizer step: a schedule callback may already have
    written the next step's LR into the optimizer when the epoch ends (an SGDR restart: the
    peak), so the line reads the LR right before each step, not at the epoch's end.

    Example:
        >>> trainer = L.Trainer(enable_progress_bar=False, callbacks=[EpochLines()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.last_lr: float | None = None  # the LR the last optimizer step used

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        if trainer.optimizers and optimizer is trainer.optimizers[0]:
            self.last_lr = float(optimizer.param_groups[0]["lr"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        print(self.line(trainer, time.perf_counter() - self._start, self.last_lr), flush=True)

    @staticmethod
    def line(trainer: L.Trainer, seconds: float, lr: float | None = None) -> str:
        """The line for the epoch that just ended; ``lr``: the LR of its last step (``None``: no
        step was taken yet, the optimizer's current LR is shown)."""
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        parts = [f"epoch {trainer.current_epoch + 1}/{total}", f"step {trainer.global_step}"]
        if lr is None and trainer.optimizers:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
        if lr is not None:
            parts.append(f"lr {lr:.4g}")
        for key, value in sorted(trainer.callback_metrics.items()):
            v = float(value)
            if value.numel() == 1 and math.isfinite(v) and not key.endswith("_step") and not key.startswith("lr-"):
                parts.append(f"{key} {v:.4g}")
        parts.append(f"{seconds:.1f} s")
        return "  ".join(parts)
