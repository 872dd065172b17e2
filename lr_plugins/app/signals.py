"""SIGTERM and SIGINT in ``lr-train``: stop at the next batch boundary, save, say so, exit non-zero.

SLURM sends SIGTERM at a job's time limit (and on preemption); Ctrl+C sends SIGINT. Lightning
turns SIGTERM into a flag and raises ``SIGTERMException`` (a ``SystemExit`` with status 0) after
the current optimizer step; SIGINT becomes a ``KeyboardInterrupt`` wherever Python is, then
``sys.exit(1)``. :class:`Interruption` makes both end the same way:

* SIGINT only sets Lightning's SIGTERM flag (a second Ctrl+C interrupts at once, as before), so
  both stop at the next batch boundary;
* at that boundary (``on_exception``) it writes ``last.ckpt`` of that exact step with
  ``trainer.save_checkpoint`` (atomic), into the ``ModelCheckpoint`` folder;
* ``lr-train`` then writes ``result.json`` with ``status: interrupted`` and exits with
  128 + the signal number (143 for SIGTERM, 130 for SIGINT), as a shell reports a process killed
  by that signal. In a ``-m`` sweep no further job is launched and the summary of the jobs so
  far is written.

Lightning's own SLURM handling is untouched: with ``SLURMEnvironment(auto_requeue=True)`` its
SIGUSR1 handler saves ``hpc_ckpt_*.ckpt`` and requeues the job, and its SIGTERM handler runs
next to ours (Lightning chains the handler it finds).

Example:
    >>> cb = Interruption("run/checkpoints")
    >>> cb.signal is None
    True
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as L

__all__ = ["Interruption", "Interrupted", "exit_status", "record_interrupted"]


def _set_lightning_sigterm_flag(trainer: Any) -> None:
    """Raise the flag Lightning's own SIGTERM handler raises, so the fit stops at the next batch boundary.

    The one use of Lightning internals in this module (checked against Lightning 2.6; listed in
    tests/test_private_api.py): ``Trainer.received_sigterm`` is a read-only property over
    ``trainer._signal_connector.received_sigterm`` and Lightning has no public way to set it
    (its ``_SignalConnector._sigterm_notifier_fn`` sets that attribute). The public property is
    read back, so a Lightning release that moves the flag fails here (and in tests/test_signals.py)
    instead of silently never stopping.
    """
    trainer._signal_connector.received_sigterm = True
    if not trainer.received_sigterm:
        raise RuntimeError("lr-train: Lightning's Trainer.received_sigterm no longer reads "
                           "trainer._signal_connector.received_sigterm (written for Lightning 2.6): update "
                           "lr_plugins/app/signals.py for this Lightning version.")


class Interrupted(Exception):
    """Training stopped on a signal; ``checkpoint`` holds the exact step (``None`` if none was written)."""

    def __init__(self, signame: str, checkpoint: Path | None, step: int, epoch: int) -> None:
        self.signame, self.checkpoint, self.step, self.epoch = signame, checkpoint, step, epoch
        where = f"{checkpoint} (optimizer step {step}, epoch {epoch})" if checkpoint else "no checkpoint"
        super().__init__(f"{signame} received: training stopped at optimizer step {step}; saved {where}; "
                         "continue with ckpt_path=last (or ckpt_path=<that file>)")


def exit_status(signame: str) -> int:
    """128 + the signal number: 143 for SIGTERM, 130 for SIGINT."""
    return 128 + int(getattr(signal, signame))


class Interruption(L.Callback):
    """Stop on SIGTERM / SIGINT at the next batch boundary and save that step as ``last.ckpt``.

    Args:
        dirpath: where ``last.ckpt`` goes (lr-train: the ``ModelCheckpoint`` folder).
    """

    def __init__(self, dirpath: str | os.PathLike) -> None:
        self.dirpath = Path(dirpath)
        self.signal: str | None = None
        self.checkpoint: Path | None = None
        self.step = 0
        self.epoch = 0
        self._trainer: Any = None
        self._previous: dict[int, Any] = {}

    # ------------------------------------------------------------------ handlers
    def install(self) -> None:
        """Install the SIGINT/SIGTERM handlers (main thread only); :meth:`restore` puts back the old ones."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    @contextmanager
    def watching(self) -> Iterator[Interruption]:
        """Handlers installed for the block; a signal during it raises :class:`Interrupted` at its end.

        Lightning ends ``fit``/``test`` on the flag with a ``SystemExit`` (``SIGTERMException``; a
        second Ctrl+C: ``sys.exit(1)``); that exit becomes :class:`Interrupted`.
        """
        self.install()
        try:
            yield self
        except SystemExit:
            if self.signal is None:
                raise
            raise self.interrupted() from None
        finally:
            self.restore()
        if self.signal is not None:  # arrived after the last batch: the run is complete, but was asked to stop
            raise self.interrupted()

    def interrupted(self) -> Interrupted:
        trainer = self._trainer
        if trainer is not None and self.checkpoint is None:
            self.step, self.epoch = trainer.global_step, trainer.current_epoch
        return Interrupted(self.signal or "SIGTERM", self.checkpoint, self.step, self.epoch)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGINT and self.signal == "SIGINT":
            raise KeyboardInterrupt  # the second Ctrl+C: now
        if self.signal is None:
            self.signal = name
            print(f"lr-train: {name} received: stopping after the current optimizer step and saving a checkpoint"
                  + (" (Ctrl+C again: stop at once)" if signum == signal.SIGINT else ""), file=sys.stderr, flush=True)
        if self._trainer is not None:
            _set_lightning_sigterm_flag(self._trainer)  # Lightning stops at the next batch boundary

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        if self.signal is not None:  # a signal between fit and test: stop this stage too
            _set_lightning_sigterm_flag(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self.signal is not None:  # Lightning resets its flag when it registers its handlers
            _set_lightning_sigterm_flag(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if not isinstance(exception, SIGTERMException):
            return  # a second Ctrl+C lands anywhere inside a step: no checkpoint of a half step
        self.signal = self.signal or "SIGTERM"
        self.step, self.epoch = trainer.global_step, trainer.current_epoch
        from lightning.pytorch.trainer.states import TrainerFn

        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            path = self.dirpath / "last.ckpt"
            trainer.save_checkpoint(path)
            self.checkpoint = path


def record_interrupted(run_dir: Path, error: Interrupted, overrides: list[str], sweep_dir: Path | None = None) -> int:
    """Write ``result.json`` (``status: interrupted``) into ``run_dir``, print one line, and, in a
    sweep, the summary of the jobs so far; return the exit status (128 + the signal number)."""
    from lr_plugins.app.summary import RESULT_FILE, summarize
    from lr_plugins.files import write_json

    write_json(run_dir / RESULT_FILE, {
        "overrides": overrides, "status": "interrupted", "error": str(error), "signal": error.signame,
        "checkpoint": str(error.checkpoint) if error.checkpoint else None, "step": error.step, "epoch": error.epoch,
        "metrics": {}, "run_dir": str(run_dir)})
    print(f"lr-train: {error}", file=sys.stderr, flush=True)
    if sweep_dir is not None:
        print("lr-train: the sweep stops here: no further job is launched", file=sys.stderr, flush=True)
        summarize(sweep_dir)
    return exit_status(error.signame)
