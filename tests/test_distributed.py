"""lr_plugins.distributed: rank-0 work whose failure stops every rank, and the teardown of spawned DDP workers."""

from __future__ import annotations

import errno
import inspect
import re
import time
from pathlib import Path
from unittest import mock

import lightning.pytorch as L
import pytest
import torch
import torch.distributed as dist
from conftest import TinyModule, make_loader, make_trainer
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

from lr_plugins import SGDR, LRFinder, Plateau, SnapshotEnsemble
from lr_plugins.distributed import CleanDistributedExit, error_line, is_spawn_strategy, on_rank_zero
from lr_plugins.snapshot import load_snapshot
from lr_plugins.snapshot.store import save_snapshot


@pytest.mark.parametrize(
    "strategy, expected",
    [("ddp_spawn", True), ("ddp_spawn_find_unused_parameters_true", True), ("ddp_fork", True), ("ddp_notebook", True),
     ("ddp", False), ("ddp_find_unused_parameters_true", False), ("auto", False), ("fsdp", False), (None, False),
     (DDPStrategy(start_method="spawn"), True), (DDPStrategy(), False)],
)
def test_is_spawn_strategy(strategy, expected):
    assert is_spawn_strategy(strategy) is expected


def test_outside_a_process_group_it_changes_nothing(tmp_path):
    model = TinyModule()
    trainer = make_trainer(tmp_path, [CleanDistributedExit()], max_steps=3)
    trainer.fit(model, make_loader())
    assert trainer.global_step == 3 and not dist.is_initialized()


def test_ddp_spawn_trainers_of_the_test_suite_get_it(tmp_path):
    trainer = make_trainer(tmp_path, [], strategy="ddp_spawn", devices=2)
    assert any(isinstance(c, CleanDistributedExit) for c in trainer.callbacks)


def test_lr_train_adds_it_for_spawned_workers_only(tmp_path, monkeypatch):

    from lr_plugins.app import train as train_module

    seen = []

    class Stop(Exception):
        pass

    class RecordingTrainer(L.Trainer):
        def __init__(self, *args, callbacks=(), **kwargs):
            seen.append(any(isinstance(c, CleanDistributedExit) for c in callbacks))
            raise Stop

    # lr-train checks the config's keys against the real Trainer's signature.
    RecordingTrainer.__init__.__signature__ = inspect.signature(L.Trainer.__init__)
    monkeypatch.setattr(L, "Trainer", RecordingTrainer)
    from test_train import _compose

    for overrides, expected in ((["trainer=ddp"], True), ([], False)):
        with pytest.raises(Stop):
            train_module.train(_compose([*overrides, "data=digits", "model=mlp", "~logger", "trainer.enable_checkpointing=false"]), tmp_path)
    assert seen == [True, False]


# ---------------------------------------------------------------------- a failure of rank 0's work stops every rank
def test_on_rank_zero_returns_the_result_and_raises_the_error_outside_a_process_group(tmp_path):
    trainer = make_trainer(tmp_path, [])
    assert on_rank_zero(trainer, divmod, 7, 2) == (3, 1)
    with pytest.raises(FileExistsError, match="^taken$"):
        on_rank_zero(trainer, _raise, FileExistsError("taken"))


def _raise(error):
    raise error


class Unpicklable(Exception):
    def __init__(self, a, b):  # pickling keeps args=("a b",) only: unpickling calls Unpicklable("a b") and fails
        super().__init__(f"{a} {b}")


def test_an_error_that_cannot_travel_keeps_its_text():
    from lr_plugins.distributed import _portable

    kept = OSError(errno.ENOSPC, "No space left on device")
    assert _portable(kept) is kept and _portable(None) is None
    moved = _portable(Unpicklable("disk", "full"))
    assert type(moved) is RuntimeError and str(moved) == "Unpicklable: disk full"


def test_error_line_of_a_spawned_workers_traceback():
    from torch.multiprocessing.spawn import ProcessRaisedException

    trace = ('Traceback (most recent call last):\n  File "x.py", line 1, in f\n    g()\nOSError: [Errno 28] No space\n\n'
             "The above exception was the direct cause of the following exception:\n\nTraceback (most recent call "
             'last):\n  File "y.py", line 2, in h\n    raise error from e\nOSError: SnapshotEnsemble could not write it.\n')
    error = ProcessRaisedException(f"\n\n-- Process 0 terminated with the following error:\n{trace}", 0, 1234)
    assert error_line(error) == "OSError: SnapshotEnsemble could not write it."
    assert error_line(ValueError("two\nlines")) == "ValueError: two lines"


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class FullDiskSnapshots(SnapshotEnsemble):
    """Every snapshot write fails the real way: os.replace (the atomic writer's last step) says ENOSPC."""

    def _write(self, dirpath, state_dict, meta):
        with mock.patch("os.replace", _full):
            return super()._write(dirpath, state_dict, meta)


class FullDiskFinder(LRFinder):
    """The finder's lr_finder.png / lr_finder.csv writes fail with ENOSPC (os.replace)."""

    def _write_outputs(self, trainer, folder):
        with mock.patch("os.replace", _full):
            return super()._write_outputs(trainer, folder)


OTHER_RUN = "f" * 32


class OtherRunsSnapshot(L.Callback):
    """Rank 0, once training has started: another run's snapshot appears under the first snapshot name."""

    def __init__(self, snap):
        self.snap = snap

    def on_train_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            save_snapshot(self.snap._dir, {"w": torch.zeros(1)}, {"cycle": 0, "step": 5, "run": OTHER_RUN})


class RecordingLauncher(_MultiProcessingLauncher):
    """ddp_spawn's launcher; each worker writes the error it stops with to ``<folder>/rank<r>.err``.

    Rank 0 then waits (20 s at most) for the others' records before it exits: once a worker has
    exited with an error, the parent process terminates the rest, also one on its way out.
    """

    def _wrapping_function(self, process_idx, *args, **kwargs):
        folder = Path(self._strategy.record_folder)
        try:
            return super()._wrapping_function(process_idx, *args, **kwargs)
        except Exception as e:
            (folder / f"rank{process_idx}.err").write_text(f"{type(e).__name__}: {e}")
            deadline = time.monotonic() + 20
            while process_idx == 0 and time.monotonic() < deadline:
                if all((folder / f"rank{r}.err").exists() for r in range(self._strategy.num_processes)):
                    break
                time.sleep(0.1)
            raise


class RecordingDDP(DDPStrategy):
    """``strategy="ddp_spawn"`` whose workers record their errors (:class:`RecordingLauncher`)."""

    def __init__(self, record_folder):
        super().__init__(start_method="spawn")
        self.record_folder = str(record_folder)

    def _configure_launcher(self):
        self._launcher = RecordingLauncher(self, start_method=self._start_method)


class LogsOnRankOneOnly(TinyModule):
    """Logs ``val/rank1_loss`` on rank 1 alone: rank 0 does not have the metric a Plateau monitors."""

    def validation_step(self, batch, batch_idx):
        if self.global_rank == 1:
            x, y = batch
            self.log("val/rank1_loss", torch.nn.functional.mse_loss(self(x), y))


FAILURES = {
    "snapshot write, disk full": "OSError: SnapshotEnsemble could not write the snapshot '.*cycle000-step00000005.pt' "
                                 r"after optimizer step 5: the disk is full \(No space left on device\)\.",
    "snapshot name taken by another run": "FileExistsError: SnapshotEnsemble will not write the snapshot "
                                          "'.*cycle000-step00000005.pt' after optimizer step 5: a snapshot file of "
                                          f"another run \\(run {OTHER_RUN}\\) is there",
    "finder outputs, disk full": r"OSError: LRFinder could not write its outputs to '.*lr_finder': the disk is full",
    "run history, folder in the way": r"IsADirectoryError: .*history.json",
    "Plateau metric missing on rank 0": r"ValueError: monitor='val/rank1_loss' is not allowed: no metric of that name",
}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_failure_of_rank_zeros_work_stops_every_rank_with_its_error(tmp_path, kind):
    """issue 17: rank-0-only work (a snapshot write, the ownership check of the next snapshot name,
    the finder's output files, lr-train's history file) used to raise on rank 0 alone while the
    other rank went on to a collective: it waited there until ddp_spawn killed it (SIGTERM; under
    plain ddp or srun until the 30-minute collective timeout). Now every rank raises the same error."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from lr_plugins.app.history import RunHistory

    callbacks: list = []
    if kind.startswith("snapshot"):
        snap = FullDiskSnapshots() if "disk full" in kind else SnapshotEnsemble()
        callbacks += [snap, SGDR(max_lr=0.2, cycle_length=1)]
        if "another run" in kind:
            callbacks.append(OtherRunsSnapshot(snap))
    elif kind.startswith("finder"):
        callbacks.append(FullDiskFinder(min_lr=1e-3, max_lr=1.0, num_steps=8, verbose=False))
    elif kind.startswith("run history"):
        (tmp_path / "history.json").mkdir()
        callbacks.append(RunHistory(tmp_path / "history.json"))
    else:
        callbacks.append(Plateau(monitor="val/rank1_loss", patience=1))
    trainer = make_trainer(tmp_path, callbacks, max_epochs=2, devices=2, strategy=RecordingDDP(tmp_path),
                           logger=TensorBoardLogger(tmp_path, name="tb"), limit_val_batches=2)
    with pytest.raises(Exception) as raised:
        module = LogsOnRankOneOnly() if kind.startswith("Plateau") else TinyModule()
        trainer.fit(module, make_loader(n=96, batch_size=8), make_loader(n=32))
    # the parent process gets the error as one line; each rank stopped with that very error
    assert re.match(FAILURES[kind], error_line(raised.value)), error_line(raised.value)
    errors = {r: (tmp_path / f"rank{r}.err").read_text() if (tmp_path / f"rank{r}.err").exists() else None for r in (0, 1)}
    assert errors[0] == errors[1] and re.match(FAILURES[kind], errors[0]), errors
    snapshots = tmp_path / "tb" / "version_0" / "snapshots"
    if kind == "snapshot write, disk full":
        assert list(snapshots.iterdir()) == []  # no partial file left
    if "another run" in kind:
        assert load_snapshot(snapshots / "cycle000-step00000005.pt")["meta"]["run"] == OTHER_RUN  # left as it was
