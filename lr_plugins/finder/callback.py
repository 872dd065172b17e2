"""The :class:`LRFinder` callback: an LR range test at fit start, then the pick applied."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from lr_plugins._validation import check_bool, check_choice, check_int, check_real
from lr_plugins.distributed import on_rank_zero
from lr_plugins.files import disk_full_hint, unwritable_reason, write_atomic
from lr_plugins.finder.apply import apply_lr
from lr_plugins.finder.auto import planned_total, resolve_rule
from lr_plugins.finder.range_test import ramp, run_range_test
from lr_plugins.finder.result import LRFinderResult
from lr_plugins.finder.rules import RULES
from lr_plugins.finder.state import TrainingState, loader_generators
from lr_plugins.finder.suggest import suggest

__all__ = ["LRFinder"]

MODES = ("exponential", "linear")


class LRFinder(Callback):
    r"""LR range test (Smith, 2017) before the first training step; its pick becomes the peak LR.

    At fit start it runs ``num_steps`` real optimizer steps with the LR ramped from ``min_lr`` to
    ``max_lr`` (``exponential``: ``lr_k = min_lr (max_lr/min_lr)^{k/(num_steps-1)}``), records
    the loss, stops early on a non-finite loss or when the causal EMA of the loss exceeds
    ``diverge_threshold`` times its best value, then restores the model, optimizer, schedulers,
    RNGs and dataloader shuffling bit for bit, so training starts exactly as it would have
    without the test. The pick is made on a zero-phase smoothing of the curve by a rule of the
    registry :data:`lr_plugins.finder.RULES` (``steepest``, ``valley``, ``minimum/10``).

    ``suggestion="auto"`` (the default) picks the rule from the schedule that follows the test
    (:func:`lr_plugins.finder.auto.resolve_rule`): it tells an annealed schedule (its planned LR
    averages at most 3/4 of its peak) from a constant one and records which and why in
    ``result.rule`` and ``result.reason``. Both get ``steepest`` for now: no rule for annealed
    schedules has passed the pre-registered fresh-task test yet (docs/research/lr-finder-schedule.md).

    With ``apply=True`` the pick reaches the Trainer's schedule callback through its
    ``set_peak(lr)`` (the schedule validates it), or becomes the first optimizer's LR (keeping
    param-group ratios, rescaling a torch scheduler the module returned). Under DDP the loss is
    averaged over the ranks at every step, so all ranks stop together and pick the same LR.

    The result is saved in the checkpoint (callback state): a fit resumed from a checkpoint that
    holds one re-applies it and runs no test, so the resumed LR curve is the uninterrupted one.

    Args:
        min_lr: First LR of the ramp (> 0).
        max_lr: Last LR of the ramp (> ``min_lr``).
        num_steps: Optimizer steps of the ramp (>= 5).
        mode: ``"exponential"`` or ``"linear"``.
        diverge_threshold: Stop when the smoothed loss exceeds this multiple of its best (> 1).
        suggestion: ``"auto"`` or the name of a registered rule (``"steepest"``, ``"valley"``,
            ``"minimum/10"``).
        apply: Apply the pick to the schedule / optimizer; ``False`` only reports it.
        output_dir: Where to write ``lr_finder.png`` and ``lr_finder.csv``. ``None``: ``<log_dir>/lr_finder``
            when the Trainer has a logger, else nothing is written. The figure and the curve also go to a
            TensorBoard logger if there is one. Checked (created and test-written) at fit start, before any step.
        beta: Decay of the causal EMA used for the divergence stop.
        smoothing: Width (points) of the Gaussian of the zero-phase smoother; ``None``: ``max(1.5, points / 50)``.
        verbose: Print the pick, the rule and why, and the override that reuses it.
        scale: Multiplier of the pick (> 0): ``result.suggestion`` (the LR applied and printed) is
            ``scale`` times the rule's LR; ``result.suggestions`` stay unscaled. No rule lands within
            2 points of the grid best on most fresh tasks, so the honest use is a sweep around the
            pick (``lr-train -m lr_finder.scale=0.5,1,2``, keep the best validation run).
        stop: Stop the fit right after the test (and the apply), before any training step, via
            ``trainer.should_stop``: the test alone, inside your own Trainer and app.

    Attributes:
        result: The :class:`~lr_plugins.finder.LRFinderResult` after the test (``None`` before).
        applied: What the pick changed (``"WarmupCosine.max_lr=0.28"``, ``"SGD lr=0.28"`` or ``"nothing"``).

    Example:
        >>> import lightning.pytorch as L
        >>> from lr_plugins import LRFinder, WarmupCosine
        >>> finder = LRFinder(num_steps=100)
        >>> trainer = L.Trainer(max_epochs=5, callbacks=[finder, WarmupCosine(warmup=1)])  # doctest: +SKIP
        >>> trainer.fit(model, datamodule=dm)  # doctest: +SKIP
        >>> finder.result.rule, finder.result.suggestion  # doctest: +SKIP
        ('steepest', 0.28)
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exponential",
        diverge_threshold: float = 4.0,
        suggestion: str = "auto",
        apply: bool = True,
        output_dir: str | os.PathLike | None = None,
        beta: float = 0.9,
        smoothing: float | None = None,
        verbose: bool = True,
        scale: float = 1.0,
        stop: bool = False,
    ):
        super().__init__()
        self.min_lr = check_real("min_lr", min_lr, low=0.0, low_open=True)
        self.max_lr = check_real("max_lr", max_lr, low=0.0, low_open=True)
        if self.max_lr <= self.min_lr:
            raise ValueError(f"max_lr={max_lr!r} is not allowed: max_lr must be > min_lr={min_lr!r}.")
        self.num_steps = check_int("num_steps", num_steps, low=5)
        self.mode = check_choice("mode", mode, MODES)
        self.diverge_threshold = check_real("diverge_threshold", diverge_threshold, low=1.0, low_open=True)
        self.suggestion = check_choice("suggestion", suggestion, ("auto", *RULES))
        self.apply = check_bool("apply", apply)
        if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"output_dir={output_dir!r} is not allowed: output_dir must be a path or None.")
        self.output_dir = output_dir
        self.beta = check_real("beta", beta, low=0.0, high=1.0, high_open=True)
        self.smoothing = check_real("smoothing", smoothing, low=0.0, low_open=True, optional=True)
        self.verbose = check_bool("verbose", verbose)
        self.scale = check_real("scale", scale, low=0.0, low_open=True)
        self.stop = check_bool("stop", stop)
        self.result: LRFinderResult | None = None
        self.applied: str = "nothing"
        self._restored = False  # result came from a checkpoint: re-apply, never re-measure
        self._fit_trainer: pl.Trainer | None = None  # set from fit start to train start
        self._planned: tuple[Any, int | None, int | None] | None = None  # find_lr(schedule=...): (schedule, max_steps, max_epochs)

    def __repr__(self) -> str:
        return (
            f"LRFinder(min_lr={self.min_lr!r}, max_lr={self.max_lr!r}, num_steps={self.num_steps}, mode={self.mode!r}, "
            f"diverge_threshold={self.diverge_threshold!r}, suggestion={self.suggestion!r}, apply={self.apply}, "
            f"scale={self.scale!r}, stop={self.stop})"
        )

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Every rank resolves the folder: trainer.log_dir is a collective (a broadcast), so it must
        # never be called inside a rank-0-only branch. Rank 0 test-writes it; all ranks learn the verdict.
        folder = self.resolve_output_dir(trainer)
        problem = on_rank_zero(trainer, unwritable_reason, folder, create=True) if folder is not None else None
        if problem:
            what = f"output_dir={str(self.output_dir)!r}" if self.output_dir is not None else f"the log folder {str(folder)!r}"
            raise ValueError(f"LRFinder: {what} is not allowed: {problem}; it must be a folder this run can create and write.")
        if self.stop and (trainer.fit_loop.min_epochs or trainer.fit_loop.min_steps):
            raise ValueError(
                f"LRFinder stop=True is not allowed with the Trainer's min_epochs={trainer.fit_loop.min_epochs!r} / "
                f"min_steps={trainer.fit_loop.min_steps!r}: the fit could not stop after the test. Unset them or stop=False."
            )
        self._fit_trainer = trainer
        if self._restored and self.result is not None:
            self._restored = False  # once: a later fit without a checkpoint tests again
            self._reapply(trainer)
        else:
            self.result = self.range_test(trainer, pl_module)
            if trainer.is_global_zero:
                for note in self.result.warnings:
                    warnings.warn(f"LRFinder: {note}", UserWarning, stacklevel=2)
            if self.apply:
                self.applied = apply_lr(trainer, self.result.suggestion)
            # rank 0 writes; a failed write stops every rank with its message (no rank waits at a collective)
            on_rank_zero(trainer, self._write_outputs, trainer, folder)
        if self.stop:
            trainer.should_stop = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_trainer = None

    def _reapply(self, trainer: pl.Trainer) -> None:
        """Apply the result a checkpoint held (no test: resume continues the saved run's curve)."""
        assert self.result is not None
        if self.apply:
            self.applied = apply_lr(trainer, self.result.suggestion)
        if trainer.is_global_zero and self.verbose:
            print(f"LRFinder: lr {self.result.suggestion:.3g} ({self.result.how()}) restored from the checkpoint; "
                  "no new range test.", flush=True)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """The result (plain Python values), so a resumed fit re-applies it instead of testing again."""
        return {"result": self.result.to_dict()} if self.result is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict.get("result"):
            return
        self.result = LRFinderResult.from_dict(state_dict["result"])
        self._restored = True
        if self._fit_trainer is not None:  # a strategy that restores after fit start: the test already ran
            self._restored = False
            self._reapply(self._fit_trainer)

    # ------------------------------------------------------------------ the rule
    def resolve(self, trainer: pl.Trainer) -> tuple[str, str]:
        """``(rule, reason)``: ``suggestion`` itself, or what ``"auto"`` stands for with this Trainer."""
        if self.suggestion != "auto":
            return self.suggestion, f"suggestion={self.suggestion!r}"
        from lr_plugins.callback import ScheduleCallback, steps_per_epoch, total_steps

        spe = steps_per_epoch(trainer)
        if self._planned is not None:  # find_lr(schedule=...): the Trainer that follows is not this one
            schedule, max_steps, max_epochs = self._planned
            if schedule is None:
                return resolve_rule(None)
            return resolve_rule(schedule, planned_total(max_steps, max_epochs, spe), spe)
        schedules = [c for c in trainer.callbacks if isinstance(c, ScheduleCallback)]
        if schedules:
            return resolve_rule(schedules[0], total_steps(trainer), spe)
        rule, reason = resolve_rule(None)
        if trainer.lr_scheduler_configs:
            own = type(trainer.lr_scheduler_configs[0].scheduler).__name__
            reason = f"no schedule callback (the module's own {own} is not read): constant LR assumed"
        return rule, reason

    # ------------------------------------------------------------------ the test
    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.automatic_optimization:
            raise ValueError(
                "LRFinder needs automatic optimization (automatic_optimization=True): with manual optimization "
                "training_step runs its own optimizer steps, so the finder cannot set the LR of each step."
            )
        if len(trainer.optimizers) != 1:
            raise ValueError(f"LRFinder needs exactly one optimizer; configure_optimizers returned {len(trainer.optimizers)}.")
        if trainer.train_dataloader is None:
            trainer.fit_loop.setup_data()
        if trainer.train_dataloader is None:
            raise ValueError("LRFinder needs a train dataloader (and limit_train_batches > 0).")

    def range_test(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> LRFinderResult:
        """Run the test, restore the state and return the result (nothing is applied here)."""
        self._check(trainer, pl_module)
        lrs = ramp(self.min_lr, self.max_lr, self.num_steps, self.mode)
        state = TrainingState(
            pl_module,
            trainer.optimizers,
            [c.scheduler for c in trainer.lr_scheduler_configs],
            loader_generators(trainer.train_dataloader),
            getattr(trainer.precision_plugin, "scaler", None),
        )
        start = time.perf_counter()
        try:
            curve = run_range_test(trainer, pl_module, lrs, self.diverge_threshold, self.beta)
        finally:
            state.restore()
        seconds = time.perf_counter() - start
        found = suggest(np.array(curve.lrs), np.array(curve.losses), self.smoothing)
        rule, reason = self.resolve(trainer)
        suggestion = self.scale * found.suggestions[rule]
        if curve.lrs and suggestion > max(curve.lrs):
            found.warnings.append(
                f"scale={self.scale:g} puts the applied LR ({suggestion:.3g}) above the largest LR the test reached "
                f"({max(curve.lrs):.3g}), where nothing was tested: lower scale, or raise max_lr if the test "
                "stopped at max_lr."
            )
        diagnostics = {
            "steps": curve.steps,
            "points": len(curve.lrs),
            "seconds": seconds,
            "best_ema": float(min(curve.ema)) if curve.ema else float("nan"),
            "index": found.index,
            "global_step": trainer.global_step,
            "world_size": trainer.world_size,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
        }
        return LRFinderResult(
            lrs=curve.lrs,
            losses=curve.losses,
            smoothed=found.smoothed.tolist(),
            ema=curve.ema,
            suggestion=suggestion,
            suggestions=found.suggestions,
            rule=rule,
            reason=reason,
            scale=self.scale,
            stop_reason=curve.stop_reason,
            warnings=found.warnings,
            diagnostics=diagnostics,
        )

    # ------------------------------------------------------------------ output
    def resolve_output_dir(self, trainer: pl.Trainer) -> Path | None:
        """``output_dir``, else ``<log_dir>/lr_finder`` when the Trainer has a logger, else ``None``.

        Call it on every rank: ``trainer.log_dir`` broadcasts rank 0's folder (a collective).
        """
        if self.output_dir is not None:
            return Path(self.output_dir)
        if trainer.loggers and trainer.log_dir:
            return Path(trainer.log_dir) / "lr_finder"
        return None

    def _write_outputs(self, trainer: pl.Trainer, folder: Path | None) -> None:
        """Rank 0 only: write the outputs, print the summary; no collective in here (``folder`` was resolved on every rank).

        Raises:
            OSError: a file cannot be written (one line naming it and why, e.g. the disk is full).
        """
        try:
            self._write_files(trainer, folder)
        except OSError as e:
            name = e.filename2 or folder  # os.replace's target (a folder in the way), else the output folder
            raise OSError(
                f"LRFinder could not write its outputs to {str(name)!r}: {disk_full_hint(e)}. The range test ran but the fit "
                "stops here; free space or move away what is in the way, or pass another output_dir."
            ) from e
        if self.verbose and self.result is not None:
            print(self.result.summary(), flush=True)

    def _write_files(self, trainer: pl.Trainer, folder: Path | None) -> None:
        result = self.result
        assert result is not None
        tensorboards = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if folder is None and not tensorboards:
            return
        from lr_plugins._figures import figure_png, matplotlib_missing
        from lr_plugins.finder.plot import plot_result

        missing = matplotlib_missing()  # the figure is optional: CSV and scalars are written without it
        if missing:
            warnings.warn(f"LRFinder: no lr_finder.png: {missing}", UserWarning, stacklevel=2)
        fig = None if missing else plot_result(result)
        if folder is not None:
            if fig is not None:
                write_atomic(folder / "lr_finder.png", figure_png(fig))
            result.save_csv(folder / "lr_finder.csv")
            result.diagnostics["output_dir"] = str(folder)
        for logger in tensorboards:
            exp = logger.experiment
            for i, (lr, loss, sm) in enumerate(zip(result.lrs, result.losses, result.smoothed)):
                exp.add_scalar("lr_finder/lr", lr, i)
                exp.add_scalar("lr_finder/loss", loss, i)
                exp.add_scalar("lr_finder/smoothed", sm, i)
            exp.add_scalar("lr_finder/suggestion", result.suggestion, trainer.global_step)  # scaled: the LR applied
            for rule, value in result.suggestions.items():
                exp.add_scalar(f"lr_finder/suggestion_{rule.replace('/', '_')}", value, trainer.global_step)
            if fig is not None:
                exp.add_figure("lr_finder/curve", fig, trainer.global_step, close=False)
            exp.flush()
