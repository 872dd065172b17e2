"""The ``SnapshotEnsemble`` callback: save at every cycle end, evaluate the ensemble.

With a cyclic schedule callback (``SGDR``, ``CyclicLR``) in the Trainer, optimizer step ``e``
ends a cycle exactly when ``cycle_at(e + 1) > cycle_at(e)`` (steps per epoch counting gradient
accumulation), i.e. ``e`` is in ``schedule.cycle_ends(total_steps, steps_per_epoch)``. A fit whose
length changed (a resume with another length or accumulation, a ``GradientAccumulationScheduler``,
``on_length_change="continue"``) runs the curve at the curve step ``v(e)`` of the schedule's
``length_plan`` (:mod:`lr_plugins.length_change`): there ``e`` ends a cycle when
``cycle(v(e + 1)) > cycle(v(e))``, with the plan's curve total and steps per epoch, so the cycles
are those of the LR actually applied. Steps are the schedule's (``schedule_step``: the first
optimizer's under manual optimization with several). Right
after that step the weights sit at the cycle's LR minimum; they are written to
``<dirpath>/cycle{c:03d}-step{e:08d}.pt`` (see :mod:`lr_plugins.snapshot.store`), also when the
cycle ends in the middle of an epoch and also in infinite training.

Once two or more snapshots are kept, every validation also evaluates their ensemble
(:func:`~lr_plugins.snapshot.evaluate.evaluate_ensemble`: the mean of softmax probabilities,
or the mean output for regression) and logs ``val/ensemble_acc``, ``val/ensemble_loss`` and
``val/ensemble_size``; ``trainer.test`` logs ``test/ensemble_*`` the same way.

Safety: the folder is this run's (``dirpath`` or the logger's folder), checked before the first
step (written by :func:`lr_plugins.files.unwritable_reason`, nothing under a snapshot name that is
not a plain file, free space for a snapshot). Every snapshot and the checkpoint carry the run id
(:attr:`SnapshotEnsemble.run_id`); a new fit refuses a folder with snapshots, a resume one with
snapshot files of another run. The checkpoint stores file names only, and a record that is not a
snapshot name of this folder is refused; only those files are ever deleted (``keep``). A snapshot
that is missing, truncated, foreign or does not fit the module exactly when it is needed (resume,
validation, test) is left out with a warning. A failed write names the file and why
(:func:`lr_plugins.files.disk_full_hint`).
Under DDP rank 0 writes and checks the files and broadcasts its verdict; every collective
(``trainer.log_dir``, broadcasts, barriers) runs on all ranks, and a failure of rank 0's work
(a refused folder, a failed write) is raised on every rank with the same message
(:func:`lr_plugins.distributed.on_rank_zero`), so the fit ends instead of waiting at a barrier.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from lr_plugins._validation import check_bool, check_choice, check_int
from lr_plugins.callback import ScheduleCallback
from lr_plugins.distributed import on_rank_zero
from lr_plugins.files import disk_full_hint, unwritable_reason
from lr_plugins.schedules import CyclicCurve
from lr_plugins.snapshot.evaluate import TASKS, default_input, default_target, evaluate_ensemble, misfit
from lr_plugins.snapshot.store import (
    blocked_names,
    check_snapshot,
    confined,
    list_snapshots,
    load_snapshot,
    parse_name,
    remove_leftovers,
    save_snapshot,
    snapshot_name,
)

__all__ = ["SnapshotEnsemble"]


class SnapshotEnsemble(Callback):
    """Snapshot ensembling (Huang et al., 2017): "train one, get M for free".

    Saves the module's weights at the end of every cycle of the Trainer's cyclic schedule and,
    once two or more snapshots exist, evaluates the ensemble of the last ``keep`` of them
    beside the module's own metrics. For ``K`` snapshots with logits ``z_k``:

    .. math:: p(y \\mid x) = \\frac{1}{K} \\sum_{k=1}^{K} \\mathrm{softmax}(z_k(x))_y

    ``val/ensemble_acc`` is the accuracy of ``argmax p`` and ``val/ensemble_loss`` the mean
    ``-log p(y|x)``; for regression (float targets) the ensemble is the mean output and
    ``val/ensemble_loss`` its MSE.

    The module is not changed. Batches are assumed to be ``(x, y, ...)`` with ``module(x)``
    giving logits; override :meth:`get_input` / :meth:`get_target` in a subclass otherwise.

    Args:
        keep: Keep only the last ``keep`` snapshots (older files are deleted); ``None``: all.
        dirpath: Where to write them; ``None``: ``<trainer.log_dir>/snapshots`` (the logger's
            folder, or ``default_root_dir`` without a logger). Always this run's folder: a resumed
            fit looks up the checkpoint's snapshots (file names only) here, never in a folder
            read from the checkpoint. Created and test-written at fit start; a new fit refuses a
            folder that already holds snapshots, a resumed fit one that holds another run's.
        in_memory: Also keep the snapshots' weights in memory (on the module's device) for
            evaluation; by default they are read from disk one at a time.
        task: ``"auto"`` (classification for integer targets of shape ``logits.shape[:-1]``),
            ``"classification"`` or ``"regression"``.
        evaluate: Evaluate the ensemble during validation and test.
        verbose: Print single-model vs ensemble metrics at the end of fit.

    Example:
        >>> import lightning.pytorch as L
        >>> from lr_plugins import SGDR, SnapshotEnsemble
        >>> trainer = L.Trainer(max_epochs=30, callbacks=[
        ...     SGDR(max_lr=0.1, cycle_length=6), SnapshotEnsemble(keep=5)])  # doctest: +SKIP
    """

    def __init__(
        self,
        keep: int | None = None,
        dirpath: str | os.PathLike | None = None,
        *,
        in_memory: bool = False,
        task: str = "auto",
        evaluate: bool = True,
        verbose: bool = True,
    ) -> None:
        self.keep = check_int("keep", keep, low=1, optional=True)
        if dirpath is not None and not isinstance(dirpath, (str, os.PathLike)):
            raise TypeError(f"dirpath={dirpath!r} is not allowed: dirpath must be a path (str) or None.")
        self.dirpath = dirpath
        self.in_memory = check_bool("in_memory", in_memory)
        self.task = check_choice("task", task, TASKS)
        self.evaluate = check_bool("evaluate", evaluate)
        self.verbose = check_bool("verbose", verbose)
        #: One dict per kept snapshot, oldest first: ``{"cycle", "step", "file"}`` (a name in the folder).
        self.records: list[dict[str, Any]] = []
        #: Latest ensemble metrics: ``{"val": {...}, "test": {...}}``.
        self.results: dict[str, dict[str, float]] = {}
        self._dir: Path | None = None
        self._created: Path | None = None  # the topmost folder this fit created (removed if empty on failure)
        self._written: set[str] = set()  # the files this instance wrote (a later fit may overwrite them)
        #: This run's id: written into every snapshot's ``meta["run"]`` and into the checkpoint; a
        #: resumed fit takes the checkpoint's, so a file is this run's exactly when its ids match.
        self.run_id: str | None = None
        self._loaded: dict[str, Any] | None = None
        self._memory: dict[str, dict[str, torch.Tensor]] = {}
        self._val_key: Any = None
        self._lr = math.nan
        self._plan_checks_pending = False

    def __repr__(self) -> str:
        return (
            f"SnapshotEnsemble(keep={self.keep!r}, dirpath={self.dirpath!r}, in_memory={self.in_memory!r}, "
            f"task={self.task!r}, evaluate={self.evaluate!r}, verbose={self.verbose!r})"
        )

    # ------------------------------------------------------------------ overridable
    def get_input(self, batch: Any) -> Any:
        """The model input of a batch: ``batch[0]`` (the batch itself if it is not a sequence)."""
        return default_input(batch)

    def get_target(self, batch: Any) -> torch.Tensor:
        """The target of a batch: ``batch[1]``."""
        return default_target(batch)

    def _write(self, dirpath: Path, state_dict: dict[str, Any], meta: dict[str, Any]) -> Path:
        """Write one snapshot file (global rank 0 only); atomic."""
        return save_snapshot(dirpath, state_dict, meta)

    @property
    def paths(self) -> list[Path]:
        """The files of the kept snapshots, oldest first (in this run's snapshot folder)."""
        return [self._dir / r["file"] for r in self.records] if self._dir is not None else []

    # ------------------------------------------------------------------ fit start
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        found = [c for c in trainer.callbacks if isinstance(c, ScheduleCallback) and isinstance(c, CyclicCurve)]
        if not found:
            others = [type(c).__name__ for c in trainer.callbacks if isinstance(c, ScheduleCallback)]
            raise ValueError(
                "SnapshotEnsemble saves a snapshot at the end of every LR cycle and needs a cyclic schedule "
                "callback (SGDR or CyclicLR) in the Trainer's callbacks; found "
                + (f"only {', '.join(others)}, which has no cycles." if others else "no schedule callback.")
                + " Add e.g. SGDR(cycle_length=...) to the callbacks."
            )
        self._schedule = found[0]
        self._memory, self._val_key, self.results = {}, None, {}
        # Every rank asks for the folder (trainer.log_dir is a collective); rank 0 prepares it and
        # every rank gets its verdict, so a refusal stops all of them before the first step.
        self._dir = self._resolve_dir(trainer)
        # a new run id per instance (a resume takes the checkpoint's at train start)
        error, self.run_id = on_rank_zero(
            trainer, lambda: (self._prepare_dir(trainer.ckpt_path is not None), self.run_id or uuid.uuid4().hex)
        )
        if error:
            raise ValueError(error)

    def _prepare_dir(self, resuming: bool) -> str | None:
        """Create and test-write this run's folder, remove kill -9 leftovers; the refusal or ``None``."""
        assert self._dir is not None
        d = self._dir
        what = f"dirpath={os.fspath(self.dirpath)!r}" if self.dirpath is not None else f"the snapshot folder {str(d)!r}"
        reason = unwritable_reason(d, create=True)
        if reason is not None:
            return f"{what} is not allowed: {reason}. Pass a writable folder as SnapshotEnsemble(dirpath=...)."
        missing = [p for p in (d, *d.parents) if not p.exists()]
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # the probe passed a moment ago: a race, reported the same way
            return f"{what} is not allowed: {d} cannot be created ({disk_full_hint(e)}). Pass a writable folder."
        self._created = missing[-1] if missing else None
        left = remove_leftovers(d)
        if left:
            warnings.warn(
                f"SnapshotEnsemble: removed {len(left)} unfinished snapshot write(s) of a killed run from {d}: {left}",
                UserWarning,
                stacklevel=2,
            )
        blocked = blocked_names(d)
        if blocked:
            return (
                f"{what} is not allowed: {blocked[0]!r} in the folder {str(d)!r} is not a plain file (a folder or a "
                "link) but has the name of a snapshot this fit may write. Move it away or pass another dirpath."
            )
        foreign = [p.name for p in list_snapshots(d) if p.name not in self._written]
        if foreign and not resuming:
            return (
                f"{what} is not allowed for a new fit: the folder {str(d)!r} already holds {len(foreign)} snapshot(s) "
                f"of an earlier run ({foreign[0]}, ...), which this fit would overwrite or mix into its ensemble. "
                "Pass a new dirpath, move those files away, or resume that run with trainer.fit(..., ckpt_path=...)."
            )
        return None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # A fit that failed before its first snapshot leaves no folder it created behind.
        created, self._created = self._created, None
        if created is None or not trainer.is_global_zero or self._dir is None:
            return
        for p in (self._dir, *self._dir.parents):
            try:
                p.rmdir()  # only ever removes an empty folder
            except OSError:
                return
            if p == created:
                return

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Checkpoint state is restored before this hook with every strategy (FSDP and DeepSpeed
        # restore it after fit start), and global_step is the resumed one here.
        assert self._dir is not None
        state, self._loaded = self._loaded, None
        self.records = []
        if trainer.ckpt_path is not None:
            if state is not None:  # None for a checkpoint from before run ids: the run stays without one
                self.run_id = state["run"]
            error = on_rank_zero(trainer, self._foreign, state)
            if error:
                raise ValueError(error)
        if state is not None:
            refused = []
            for r in state["records"]:
                path = self._confine(r)
                if path is None:
                    refused.append(f"{r['file']!r} (not a snapshot file name in {str(self._dir)!r})")
                else:
                    self.records.append({"cycle": r["cycle"], "step": r["step"], "file": path.name})
            if refused:
                warnings.warn(
                    f"SnapshotEnsemble: {len(refused)} snapshot record(s) of the checkpoint are refused and left out "
                    f"of the ensemble (a record must name a file cycleNNN-stepNNNNNNNN.pt of this run's snapshot "
                    f"folder, matching its cycle and step): {', '.join(refused)}",
                    UserWarning,
                    stacklevel=2,
                )
            self._drop_unreadable(trainer, pl_module, "recorded in the checkpoint")
        if self.in_memory:
            for r, path in zip(self.records, self.paths):
                self._memory[r["file"]] = load_snapshot(path, map_location=pl_module.device)["state_dict"]
        self._last_step = self._schedule.schedule_step(trainer)
        # What is planned needs the schedule's plan for this fit, made in its own on_train_start: a
        # schedule listed after this callback has not made it yet, so the checks wait for the first batch.
        callbacks = list(trainer.callbacks)
        self._plan_checks_pending = callbacks.index(self._schedule) > callbacks.index(self)
        if not self._plan_checks_pending:
            self._plan_checks(trainer, pl_module)

    def _plan_checks(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Before the first step: warn when no cycle ends in this fit; refuse a disk that cannot hold a snapshot."""
        self._plan_checks_pending = False
        self._warn_if_no_cycle_ends(trainer)
        error = on_rank_zero(trainer, self._check_space, trainer, pl_module)
        if error:
            raise OSError(error)

    def _planned_snapshots(self, trainer: pl.Trainer) -> int:
        """How many new snapshot files this fit will hold at once at most: ``min(keep + 1, cycle ends left)``.

        ``keep + 1``: a new snapshot is written before the oldest is deleted. Infinite training
        with ``keep=None`` has no known bound: 1 (only the first snapshot is checked).
        """
        left = self._ends_left(self._schedule.schedule_step(trainer))
        bound = min(left, self.keep + 1 if self.keep is not None else left)
        return int(bound) if math.isfinite(bound) else 1

    def _check_space(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str | None:
        """Rank 0, before the first step: refuse when the disk cannot hold one snapshot; warn when not all.

        One snapshot is about the bytes of the module's tensors (``numel * element_size``, plus
        64 KiB for the file's index); the free space is ``shutil.disk_usage(folder).free``.
        """
        assert self._dir is not None
        planned = self._planned_snapshots(trainer)
        if planned == 0:
            return None
        size = sum(t.numel() * t.element_size() for t in pl_module.state_dict().values() if isinstance(t, torch.Tensor))
        size += 64 * 1024
        try:
            free = shutil.disk_usage(self._dir).free
        except OSError:
            return None  # nothing to probe: the write itself will say what fails
        if free < size:
            return (
                f"SnapshotEnsemble: the snapshot folder {str(self._dir)!r} cannot hold one snapshot: the disk is full "
                f"({_mib(free)} free, a snapshot of {type(pl_module).__name__} takes about {_mib(size)}). Free space "
                "or pass a dirpath on another disk."
            )
        if free < size * planned:
            warnings.warn(
                f"SnapshotEnsemble: the disk of {str(self._dir)!r} has {_mib(free)} free, less than the {planned} "
                f"snapshot(s) this fit will hold at once (about {_mib(size)} each): a later snapshot will fail with "
                "'the disk is full'. Free space, lower keep, or pass a dirpath on another disk.",
                UserWarning,
                stacklevel=2,
            )
        return None

    def _foreign(self, state: dict[str, Any] | None) -> str | None:
        """On resume: the refusal when the folder holds snapshot files this run did not write, else ``None``.

        A file is this run's when its ``meta["run"]`` is the checkpoint's run id (or this
        instance wrote it). A checkpoint from before run ids (``run`` is ``None``) owns the files
        its records name that carry no run id either. Every other snapshot file, readable or
        not, is another run's: the resume would overwrite it or mix it into its ensemble.
        """
        assert self._dir is not None
        named = {os.path.basename(r["file"]) for r in state["records"]} if state is not None else set()
        legacy = state is not None and state["run"] is None
        foreign = []
        for path in list_snapshots(self._dir):
            if path.name in self._written:
                continue
            try:
                owner = check_snapshot(path)["meta"].get("run")
            except (OSError, ValueError):
                owner = "unreadable"
                if path.name in named:  # a damaged member of this run: left out below, with a warning
                    continue
            if (owner is None and path.name in named) if legacy else owner == self.run_id:
                continue
            foreign.append(path.name)
        if not foreign:
            return None
        return (
            f"SnapshotEnsemble: resuming into the snapshot folder {str(self._dir)!r} is not allowed: it holds "
            f"{len(foreign)} snapshot file(s) this run did not write ({foreign[0]}, ...), which the resumed fit would "
            "overwrite or mix into its ensemble. Move those files away, or pass a dirpath of its own (the "
            "checkpoint's snapshots are then left out)."
        )

    def _confine(self, record: dict[str, Any]) -> Path | None:
        """The file of a checkpoint record in this run's folder, or ``None`` if it is refused.

        A record names a bare file (``file``); an older checkpoint's absolute ``path`` is accepted
        only when it is a file of this very folder.
        """
        assert self._dir is not None
        name = record["file"]
        if os.path.basename(name) != name:  # an older checkpoint's absolute path
            here = os.path.realpath(self._dir)
            if os.path.realpath(os.path.dirname(name)) != here:
                return None
            name = os.path.basename(name)
        path = confined(self._dir, name)
        if path is None or parse_name(name) != (record["cycle"], record["step"]):
            return None
        return path

    def _drop_unreadable(self, trainer: pl.Trainer, pl_module: pl.LightningModule, where: str) -> None:
        """Leave out (with a warning) the members whose file is missing, truncated, foreign or does not fit.

        Rank 0 checks the files and every rank drops the same members. A member must fit the
        module exactly (:func:`~lr_plugins.snapshot.evaluate.misfit`: the same tensor names and
        shapes). Members kept in memory need no file.
        """

        def check() -> list[str]:
            bad = []
            for r, path in zip(self.records, self.paths):
                if r["file"] in self._memory:
                    continue
                try:
                    why = misfit(pl_module, check_snapshot(path)["state_dict"])
                except (OSError, ValueError) as e:
                    why = str(e)
                if why is not None:
                    bad.append(f"{r['file']} ({why})")
            return bad

        bad = on_rank_zero(trainer, check)
        if not bad:
            return
        names = {b.split(" ", 1)[0] for b in bad}
        self.records = [r for r in self.records if r["file"] not in names]
        warnings.warn(
            f"SnapshotEnsemble: {len(bad)} snapshot(s) {where} are missing, unreadable or do not fit the module "
            f"{type(pl_module).__name__} and are left out of the ensemble: {'; '.join(bad)}",
            UserWarning,
            stacklevel=2,
        )

    def _spe(self) -> float:
        """Steps per epoch for ``cycle_at``: the schedule's, or 1 for an unsized train loader.

        With an unsized loader the schedule refuses ``unit="epoch"`` at fit start; its step and
        fraction units place cycles without steps per epoch, so any finite value gives the same ends.
        """
        spe = self._schedule.fit_steps_per_epoch
        return spe if math.isfinite(spe) else 1.0

    def _cycle(self, step: int) -> int:
        """The cycle of the LR that optimizer ``step`` uses: ``cycle(v(step), T_v, spe_v)`` of the schedule's plan."""
        plan = self._schedule.length_plan
        spe = plan.curve_steps_per_epoch
        return self._schedule.cycle(plan.curve_step(step), plan.curve_total, spe if math.isfinite(spe) else 1.0)

    def _ends_left(self, start: int) -> float:
        """How many of the steps ``start .. N-1`` end a cycle (``inf`` in infinite training).

        Exact (``cycle_ends``) while the plan is the identity; after a re-plan an upper bound, as
        the cycle index never decreases: ``min(cycle(N) - max(cycle(start), 0), N - start)``.
        """
        plan, total = self._schedule.length_plan, self._schedule.fit_total_steps
        if not math.isfinite(total) or start >= total:
            return math.inf if not math.isfinite(total) else 0
        n = int(total)
        if not plan.warped and plan.curve_total == total:
            return len([e for e in self._schedule.cycle_ends(n, self._spe()) if e >= start])
        return max(0, min(self._cycle(n) - max(self._cycle(start), 0), n - start))

    def _warn_if_no_cycle_ends(self, trainer: pl.Trainer) -> None:
        """Warn when no cycle ends between the current step and the end of the planned fit.

        Steps ``g .. N-1`` hold a cycle end (``cycle(e + 1) > cycle(e) >= 0``) exactly when
        ``cycle(N) > max(cycle(g), 0)``, as the cycle index never decreases.
        """
        total, spe, start = self._schedule.fit_total_steps, self._spe(), self._schedule.schedule_step(trainer)
        if not math.isfinite(total) or start >= total:
            return
        total = int(total)
        if self._cycle(total) > max(self._cycle(start), 0):
            return
        warnings.warn(
            f"SnapshotEnsemble will save no snapshot in this fit: no cycle of {type(self._schedule).__name__} "
            f"ends within its optimizer steps {start}..{total - 1} ({spe:g} per epoch). Use a shorter cycle "
            "(cycle_length / step_size) or train longer.",
            UserWarning,
            stacklevel=2,
        )

    def _resolve_dir(self, trainer: pl.Trainer) -> Path:
        """This run's snapshot folder: ``dirpath``, else ``<trainer.log_dir>/snapshots`` (a collective)."""
        if self.dirpath is not None:
            return Path(self.dirpath).absolute()
        return Path(trainer.log_dir or trainer.default_root_dir).absolute() / "snapshots"

    # ------------------------------------------------------------------ saving
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if trainer.optimizers and optimizer is trainer.optimizers[0]:
            self._lr = float(optimizer.param_groups[0]["lr"])

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self._plan_checks_pending:
            self._plan_checks(trainer, pl_module)
        self._last_step = self._schedule.schedule_step(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        # The optimizer steps this batch took (none under gradient accumulation), in the schedule's count.
        step = self._schedule.schedule_step(trainer)
        first, self._last_step = self._last_step, step
        for done in range(first, step):  # done: an optimizer step that just completed
            cycle = self._cycle(done)
            if cycle >= 0 and self._cycle(done + 1) > cycle:
                self._snapshot(trainer, pl_module, cycle, done)

    def _snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule, cycle: int, step: int) -> None:
        val = {
            k: float(v) for k, v in trainer.callback_metrics.items()
            if k.startswith("val") and isinstance(v, torch.Tensor) and v.numel() == 1
        }
        meta = {
            "cycle": cycle,
            "step": step,
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "lr": self._lr,
            "module": type(pl_module).__qualname__,
            "val": val,
            "run": self.run_id,
        }
        assert self._dir is not None
        name = snapshot_name(cycle, step)
        records = [r for r in self.records if r["file"] != name] + [{"cycle": cycle, "step": step, "file": name}]
        evicted = records[: -self.keep] if self.keep is not None else []
        # Rank 0 writes and evicts; its error (if any) stops every rank (this is also the ranks' barrier).
        on_rank_zero(trainer, self._save, pl_module, meta, name, evicted)
        self._written.add(name)
        self.records = records[len(evicted) :]
        if self.in_memory:
            self._memory[name] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        for r in evicted:
            self._memory.pop(r["file"], None)

    def _save(self, pl_module: pl.LightningModule, meta: dict[str, Any], name: str, evicted: list[dict[str, Any]]) -> None:
        """Rank 0: write the snapshot ``name`` (never over another run's file), then delete the ``evicted`` ones."""
        assert self._dir is not None
        step = meta["step"]
        other = self._other_runs_file(name)
        if other is not None:
            raise FileExistsError(
                f"SnapshotEnsemble will not write the snapshot {str(self._dir / name)!r} after optimizer step "
                f"{step}: {other}, which appeared after this fit started. It is left as it was; move it away "
                "(or give each run its own dirpath) and resume from the last checkpoint."
            )
        try:
            self._write(self._dir, pl_module.state_dict(), meta)
        except OSError as e:
            error = OSError(
                f"SnapshotEnsemble could not write the snapshot {str(self._dir / name)!r} after optimizer step "
                f"{step}: {disk_full_hint(e)}. The earlier snapshots are kept and no partial file is left; fix "
                "that (free space, or move away what is in the way) and resume from the last checkpoint."
            )
            error.errno = e.errno
            raise error from e
        for r in evicted:
            path = confined(self._dir, r["file"])  # records are checked on resume; this checks again
            if path is not None:
                path.unlink(missing_ok=True)

    def _other_runs_file(self, name: str) -> str | None:
        """What stands at ``name`` if it is not this run's to overwrite (a snapshot of another run), else ``None``."""
        assert self._dir is not None
        path = self._dir / name
        if name in self._written or not (path.exists() or path.is_symlink()):
            return None
        if path.is_symlink() or not path.is_file():
            return None  # the write itself fails and says so (a folder in the way)
        try:
            owner = check_snapshot(path)["meta"].get("run")
        except (OSError, ValueError):
            owner = None
        if self.run_id is not None and owner == self.run_id:
            return None
        return f"a snapshot file of another run ({'run ' + owner if isinstance(owner, str) else 'no run id'}) is there"

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loaders: Any, nums: Any) -> dict[str, float]:
        loaders = list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
        nums = list(nums) if isinstance(nums, (list, tuple)) else [nums] * len(loaders)

        def batches() -> Iterator[Any]:
            for i, (dl, n) in enumerate(zip(loaders, nums)):
                for batch in islice(dl, int(n) if math.isfinite(n) else None):
                    yield trainer.strategy.batch_to_device(batch, dataloader_idx=i)

        def state_dicts() -> Iterator[dict[str, torch.Tensor]]:
            for r, path in zip(self.records, self.paths):
                sd = self._memory.get(r["file"])
                yield sd if sd is not None else load_snapshot(path, map_location=pl_module.device)["state_dict"]

        reduce = None
        if trainer.world_size > 1:
            reduce = lambda t: trainer.strategy.reduce(t, reduce_op="sum")  # noqa: E731
        was_training = pl_module.training
        pl_module.eval()
        try:
            return evaluate_ensemble(
                pl_module,
                state_dicts(),
                batches,
                task=self.task,
                get_input=self.get_input,
                get_target=self.get_target,
                reduce=reduce,
                context=trainer.precision_plugin.forward_context,
                names=[r["file"] for r in self.records],
            )
        finally:
            pl_module.train(was_training)

    def _log(self, pl_module: pl.LightningModule, stage: str, result: dict[str, float]) -> None:
        self.results[stage] = {f"{stage}/ensemble_{k}": v for k, v in result.items()}
        for name, value in self.results[stage].items():
            pl_module.log(name, value, on_step=False, on_epoch=True, sync_dist=False)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self.evaluate or len(self.records) < 2:
            return
        key = (tuple(r["file"] for r in self.records), tuple(trainer.num_val_batches))
        if key != self._val_key:  # the ensemble and the data are fixed until a new snapshot comes
            self._drop_unreadable(trainer, pl_module, "deleted or damaged during training")
            if len(self.records) < 2:
                self._val_key = None
                return
            key = (tuple(r["file"] for r in self.records), tuple(trainer.num_val_batches))
            self._val_result = self._evaluate(trainer, pl_module, trainer.val_dataloaders, trainer.num_val_batches)
            self._val_key = key
        self._log(pl_module, "val", self._val_result)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.evaluate:
            return
        if not self.records:  # a fresh callback: use the snapshots already in the folder
            self._dir = self._dir or self._resolve_dir(trainer)
            found = list_snapshots(self._dir)[-self.keep :] if self.keep else list_snapshots(self._dir)
            names = [(p.name, parse_name(p.name)) for p in found]
            self.records = [{"cycle": ce[0], "step": ce[1], "file": name} for name, ce in names if ce is not None]
        self._drop_unreadable(trainer, pl_module, "in the snapshot folder")
        if len(self.records) < 2:
            return
        result = self._evaluate(trainer, pl_module, trainer.test_dataloaders, trainer.num_test_batches)
        self._log(pl_module, "test", result)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._created = None  # the fit went through: the folder is the user's now
        if not (self.verbose and trainer.is_global_zero):
            return
        lines = [f"SnapshotEnsemble: {len(self.records)} snapshot(s) in {self._dir}"]
        if "val" in self.results:
            single = {
                k: float(v) for k, v in trainer.callback_metrics.items()
                if k.startswith("val") and "ensemble" not in k and isinstance(v, torch.Tensor) and v.numel() == 1
            }
            fmt = lambda d: ", ".join(f"{k}={v:.4f}" for k, v in sorted(d.items()))  # noqa: E731
            lines.append(f"  single model: {fmt(single) or '(the module logs no val metrics)'}")
            lines.append(f"  ensemble:     {fmt(self.results['val'])}")
        print("\n".join(lines))

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """``{"records": [{"cycle", "step", "file"}, ...], "run": run_id}``: file names only, never a folder."""
        return {"records": [dict(r) for r in self.records], "run": self.run_id}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Check the checkpoint's records (their files are looked up in this run's folder at train start).

        Raises:
            ValueError: the state or a record has the wrong type or shape (the message names the key).
        """
        self._loaded = _check_state(state_dict)


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


_KEY = "checkpoint['callbacks'][SnapshotEnsemble]"


_RUN = re.compile(r"^[0-9a-f]{32}$")


def _check_state(state: Any) -> dict[str, Any] | None:
    """The checked state of a checkpoint's SnapshotEnsemble: ``{"records": [...], "run": str | None}``.

    ``None`` for an empty state. Each record becomes ``{"cycle": int, "step": int, "file": str}``;
    an older checkpoint's ``path`` is read as ``file`` (it is confined to this run's folder at
    train start). ``run`` is the run id (32 hex digits), ``None`` in a checkpoint from before run ids.
    """
    if state is None or state == {}:
        return None
    if not isinstance(state, dict):
        raise ValueError(f"{_KEY}={state!r:.80} is not allowed: it must be a dict with a 'records' list.")
    records = state.get("records")
    if not isinstance(records, list):
        raise ValueError(
            f"{_KEY}['records']={records!r:.80} is not allowed: it must be a list of "
            "{'cycle': int, 'step': int, 'file': str} dicts."
        )
    checked = []
    for i, r in enumerate(records):
        key = f"{_KEY}['records'][{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{key}={r!r:.80} is not allowed: it must be a dict with keys 'cycle', 'step', 'file'.")
        for k in ("cycle", "step"):
            v = r.get(k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{key}['{k}']={v!r:.80} is not allowed: it must be an integer >= 0.")
        file = r.get("file", r.get("path"))
        if not isinstance(file, str) or not file:
            raise ValueError(f"{key}['file']={file!r:.80} is not allowed: it must be a snapshot file name (str).")
        checked.append({"cycle": r["cycle"], "step": r["step"], "file": file})
    run = state.get("run")
    if run is not None and not (isinstance(run, str) and _RUN.match(run)):
        raise ValueError(f"{_KEY}['run']={run!r:.80} is not allowed: it must be a run id of 32 hex digits (or absent).")
    return {"records": checked, "run": run}
