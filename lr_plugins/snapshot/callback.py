"""The ``SnapshotEnsemble`` callback: save at every cycle end, evaluate the ensemble.

With a cyclic schedule callback (``SGDR``, ``CyclicLR``) in the Trainer, optimizer step ``e``
ends a cycle exactly when ``cycle_at(e + 1) > cycle_at(e)`` (steps per epoch counting gradient
accumulation), i.e. ``e`` is in ``schedule.cycle_ends(total_steps, steps_per_epoch)``. Right
after that step the weights sit at the cycle's LR minimum; they are written to
``<dirpath>/cycle{c:03d}-step{e:08d}.pt`` (see :mod:`lr_plugins.snapshot.store`), also when the
cycle ends in the middle of an epoch and also in infinite training.

Once two or more snapshots are kept, every validation also evaluates their ensemble
(:func:`~lr_plugins.snapshot.evaluate.evaluate_ensemble`: the mean of softmax probabilities,
or the mean output for regression) and logs ``val/ensemble_acc``, ``val/ensemble_loss`` and
``val/ensemble_size``; ``trainer.test`` logs ``test/ensemble_*`` the same way.
"""

from __future__ import annotations

import math
import os
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
from lr_plugins.schedules import CyclicCurve
from lr_plugins.snapshot.evaluate import TASKS, default_input, default_target, evaluate_ensemble
from lr_plugins.snapshot.store import list_snapshots, load_snapshot, save_snapshot, snapshot_name

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
            folder, or ``default_root_dir`` without a logger). A resumed fit keeps the folder of
            its checkpoint unless ``dirpath`` is given.
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
        #: One dict per kept snapshot, oldest first: ``{"cycle", "step", "path"}``.
        self.records: list[dict[str, Any]] = []
        #: Latest ensemble metrics: ``{"val": {...}, "test": {...}}``.
        self.results: dict[str, dict[str, float]] = {}
        self._dir: Path | None = None
        self._loaded: dict[str, Any] | None = None
        self._memory: dict[str, dict[str, torch.Tensor]] = {}
        self._val_key: Any = None
        self._lr = math.nan

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
        """The files of the kept snapshots, oldest first."""
        return [Path(r["path"]) for r in self.records]

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

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Checkpoint state is restored before this hook with every strategy (FSDP and DeepSpeed
        # restore it after fit start), and global_step is the resumed one here.
        state, self._loaded = self._loaded, None
        if state is not None and self.dirpath is None and state.get("dirpath"):
            self._dir = Path(state["dirpath"])
        else:
            self._dir = self._resolve_dir(trainer)
        if state is not None:
            self.records = [dict(r) for r in state.get("records", [])]
            missing = [r["path"] for r in self.records if not Path(r["path"]).is_file()]
            if missing:
                warnings.warn(
                    f"SnapshotEnsemble: {len(missing)} snapshot(s) recorded in the checkpoint are missing on disk "
                    f"and are left out of the ensemble: {missing}",
                    UserWarning,
                    stacklevel=2,
                )
                self.records = [r for r in self.records if r["path"] not in missing]
        else:
            self.records = []
            if trainer.is_global_zero and list_snapshots(self._dir):
                warnings.warn(
                    f"SnapshotEnsemble: {self._dir} already holds snapshots from an earlier run; files with the "
                    "same cycle and step are overwritten and the others are not part of this run's ensemble.",
                    UserWarning,
                    stacklevel=2,
                )
        if self.in_memory:
            for r in self.records:
                self._memory[r["path"]] = load_snapshot(r["path"], map_location=pl_module.device)["state_dict"]
        self._last_step = trainer.global_step

    def _resolve_dir(self, trainer: pl.Trainer) -> Path:
        if self.dirpath is not None:
            return Path(self.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir) / "snapshots"

    # ------------------------------------------------------------------ saving
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if trainer.optimizers and optimizer is trainer.optimizers[0]:
            self._lr = float(optimizer.param_groups[0]["lr"])

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step == self._last_step:  # gradient accumulation: no optimizer step in this batch
            return
        self._last_step = step
        done = step - 1  # the optimizer step that just completed
        spe, total = self._schedule.fit_steps_per_epoch, self._schedule.fit_total_steps
        total = None if math.isinf(total) else int(total)  # unit="fraction" places cycles by the total
        cycle = self._schedule.cycle_at(done, spe, total)
        if cycle >= 0 and self._schedule.cycle_at(done + 1, spe, total) > cycle:
            self._snapshot(trainer, pl_module, cycle, done)

    def _snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule, cycle: int, step: int) -> None:
        val = {
            k: float(v) for k, v in trainer.callback_metrics.items()
            if k.startswith("val") and isinstance(v, torch.Tensor) and v.numel() == 1
        }
        meta = {
            "cycle": cycle,
            "step": step,
            "global_step": step + 1,
            "epoch": trainer.current_epoch,
            "lr": self._lr,
            "module": type(pl_module).__qualname__,
            "val": val,
        }
        assert self._dir is not None
        path = str((self._dir / snapshot_name(cycle, step)).absolute())
        if trainer.is_global_zero:
            self._write(self._dir, pl_module.state_dict(), meta)
        self.records = [r for r in self.records if r["path"] != path]
        self.records.append({"cycle": cycle, "step": step, "path": path})
        if self.in_memory:
            self._memory[path] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        if self.keep is not None and len(self.records) > self.keep:
            evicted, self.records = self.records[: -self.keep], self.records[-self.keep :]
            for r in evicted:
                self._memory.pop(r["path"], None)
                if trainer.is_global_zero:
                    Path(r["path"]).unlink(missing_ok=True)
        trainer.strategy.barrier("lr_plugins.snapshot")

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loaders: Any, nums: Any) -> dict[str, float]:
        loaders = list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
        nums = list(nums) if isinstance(nums, (list, tuple)) else [nums] * len(loaders)

        def batches() -> Iterator[Any]:
            for i, (dl, n) in enumerate(zip(loaders, nums)):
                for batch in islice(dl, int(n) if math.isfinite(n) else None):
                    yield trainer.strategy.batch_to_device(batch, dataloader_idx=i)

        def state_dicts() -> Iterator[dict[str, torch.Tensor]]:
            for r in self.records:
                sd = self._memory.get(r["path"])
                yield sd if sd is not None else load_snapshot(r["path"], map_location=pl_module.device)["state_dict"]

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
        key = (tuple(r["path"] for r in self.records), tuple(trainer.num_val_batches))
        if key != self._val_key:  # the ensemble and the data are fixed until a new snapshot comes
            self._val_result = self._evaluate(trainer, pl_module, trainer.val_dataloaders, trainer.num_val_batches)
            self._val_key = key
        self._log(pl_module, "val", self._val_result)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.evaluate:
            return
        if not self.records:  # a fresh callback: use the snapshots already in the folder
            folder = self._dir or self._resolve_dir(trainer)
            found = list_snapshots(folder)[-self.keep :] if self.keep else list_snapshots(folder)
            self.records = [{"cycle": -1, "step": -1, "path": str(p.absolute())} for p in found]
        if len(self.records) < 2:
            return
        result = self._evaluate(trainer, pl_module, trainer.test_dataloaders, trainer.num_test_batches)
        self._log(pl_module, "test", result)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
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
        return {"records": [dict(r) for r in self.records], "dirpath": str(self._dir) if self._dir else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = dict(state_dict) if state_dict else None
