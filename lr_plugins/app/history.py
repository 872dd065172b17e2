"""The per-run record that ``lr-train`` keeps for its result file and the sweep plot.

:class:`RunHistory` is a plain Lightning callback (module level, so ``ddp_spawn`` can pickle it).
It records the LR of param group 0 of the first optimizer and the training loss at every
optimizer step (the loss its gradient came from: the sum of its accumulated batches' losses,
each divided by ``accumulate_grad_batches`` as Lightning does) and ``val/acc`` at the end of
every validation epoch, writes them to a JSON file on rank 0 at fit end, and logs the momentum
(``lr-<Optimizer>-momentum``) when no schedule callback logs it, so TensorBoard always shows the
momentum.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import lightning.pytorch as L

from lr_plugins.callback import ScheduleCallback, momentum_tags
from lr_plugins.distributed import on_rank_zero
from lr_plugins.files import write_json

__all__ = ["RunHistory"]


class RunHistory(L.Callback):
    """Record ``step``/``lr``/``loss`` per optimizer step and ``epoch``/``val_acc`` per epoch into ``path``.

    Example:
        >>> cb = RunHistory("history.json")  # doctest: +SKIP
        >>> L.Trainer(callbacks=[SGDR(max_lr=0.1, cycle_length=2), cb])  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.epochs: list[int] = []
        self.val_acc: list[float] = []
        self._momenta: list[tuple[dict, str, str]] = []  # (param group, tag, "betas" | "momentum")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._momenta = []
        if any(isinstance(c, ScheduleCallback) and c.log_lr for c in trainer.callbacks):
            return  # the schedule logs the momentum (LearningRateMonitor's tags and steps)
        for opt, tags in zip(trainer.optimizers, momentum_tags(trainer.optimizers)):
            for group, tag in zip(opt.param_groups, tags):
                if "betas" in group or group.get("momentum") is not None:
                    self._momenta.append((group, tag, "betas" if "betas" in group else "momentum"))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self.steps and self.steps[-1] == step:  # gradient accumulation: one record per optimizer step
            return
        self.steps.append(step)
        self.lrs.append(float(trainer.optimizers[0].param_groups[0]["lr"]))
        self.losses.append(0.0)
        if not self._momenta:
            return
        metrics = {tag: float(g[key][0] if key == "betas" else g[key]) for g, tag, key in self._momenta}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.losses and loss is not None:
            self.losses[-1] += float(loss)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or "val/acc" not in trainer.callback_metrics:
            return
        self.epochs.append(trainer.current_epoch)
        self.val_acc.append(float(trainer.callback_metrics["val/acc"]))

    def _record(self) -> dict[str, list]:
        return {"step": self.steps, "lr": self.lrs, "loss": self.losses, "epoch": self.epochs, "val_acc": self.val_acc}

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # An interrupted run (SIGTERM, Ctrl+C) keeps the steps it ran. Lightning calls this hook only on
        # the rank that raised, so no collective here; a failed write must not hide the exception.
        if trainer.is_global_zero:
            with contextlib.suppress(OSError):
                write_json(self.path, self._record())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # rank 0 writes; a failed write (a full disk) ends every rank with its message, none waits at teardown
        on_rank_zero(trainer, write_json, self.path, self._record())
