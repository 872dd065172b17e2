"""Callbacks the lifecycle tests add to a real ``lr-train`` run (``+callbacks.x._target_=lifecycle_helpers.X``):
they send the process a real signal at an exact point, so a kill or a preemption lands where the test says."""

from __future__ import annotations

import os
import signal

import lightning.pytorch as L

__all__ = ["KillAtEpochStart", "SignalAtStep", "PauseAtTrainStart"]


class KillAtEpochStart(L.Callback):
    """SIGKILL this process when epoch ``epoch`` (0-based) starts: ``epoch`` epochs are done."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAtStep(L.Callback):
    """Send ``signame`` (SIGTERM, SIGINT) to this process during optimizer step ``step`` (0-based)."""

    def __init__(self, step: int, signame: str = "SIGTERM") -> None:
        self.step, self.sig = step, getattr(signal, signame)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.sig)


class PauseAtTrainStart(L.Callback):
    """Write ``<flag>.started`` when training starts, then wait (up to 120 s) until ``<flag>.go`` exists."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time
        from pathlib import Path

        Path(self.flag + ".started").write_text(str(os.getpid()))
        deadline = time.monotonic() + 120
        while not Path(self.flag + ".go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
