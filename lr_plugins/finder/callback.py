"""The :class:`LRFinder` callback: an LR range test at fit start, then the pick applied."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback

from lr_plugins._atomic import write_atomic
from lr_plugins._validation import check_bool, check_choice, check_int, check_real
from lr_plugins.finder.apply import apply_lr
from lr_plugins.finder.range_test import ramp, run_range_test
from lr_plugins.finder.result import LRFinderResult
from lr_plugins.finder.state import TrainingState, loader_generators
from lr_plugins.finder.suggest import RULES, suggest

__all__ = ["LRFinder"]

MODES = ("exponential", "linear")


class LRFinder(Callback):
    r"""LR range test (Smith, 2017) before the first training step, with a steepest-slope pick.

    At fit start it runs ``num_steps`` real optimizer steps with the LR ramped from ``min_lr`` to
    ``max_lr`` (``exponential``: ``lr_k = min_lr (max_lr/min_lr)^{k/(num_steps-1)}``), records
    the loss, stops early on a non-finite loss or when the causal EMA of the loss exceeds
    ``diverge_threshold`` times its best value, then restores the model, optimizer, schedulers,
    RNGs and dataloader shuffling bit for bit, so training starts exactly as it would have
    without the test. The pick (``suggestion``) is made on a zero-phase smoothing of the curve:

    * ``steepest`` (default): the most negative ``d loss / d log10(lr)`` before the loss minimum;
    * ``valley``: fastai's rule; ``minimum/10``: the LR at the minimum divided by 10;
    * ``peak``: ``min(3 * steepest, 1.5 * LR at the minimum)``, a peak for annealed schedules (see
      :func:`~lr_plugins.finder.suggest.peak`).

    With ``apply=True`` the pick becomes the ``max_lr`` of the Trainer's schedule callback
    (CyclicLR: also ``min_lr = max_lr / 4``), or the first optimizer's LR (keeping param-group
    ratios, rescaling a torch scheduler the module returned). Under DDP the loss is averaged over
    the ranks at every step, so all ranks stop together and pick the same LR.

    Args:
        min_lr: First LR of the ramp (> 0).
        max_lr: Last LR of the ramp (> ``min_lr``).
        num_steps: Optimizer steps of the ramp (>= 5).
        mode: ``"exponential"`` or ``"linear"``.
        diverge_threshold: Stop when the smoothed loss exceeds this multiple of its best (> 1).
        suggestion: The rule behind ``result.suggestion``: ``"steepest"``, ``"valley"``, ``"minimum/10"``,
            ``"peak"`` or ``"basin"``.
        apply: Apply the pick to the schedule / optimizer; ``False`` only reports it.
        output_dir: Where to write ``lr_finder.png`` and ``lr_finder.csv``. ``None``: ``<log_dir>/lr_finder``
            when the Trainer has a logger, else nothing is written. The figure and the curve also go to a
            TensorBoard logger if there is one.
        beta: Decay of the causal EMA used for the divergence stop.
        smoothing: Width (points) of the Gaussian of the zero-phase smoother; ``None``: ``max(1.5, points / 50)``.
        verbose: Print the pick and the override that reuses it.
        scale: Multiplier of the pick (> 0): ``result.suggestion`` (the LR applied and printed) is
            ``scale`` times the rule's LR; ``result.suggestions`` stay unscaled. With Hydra,
            ``lr-train -m lr_finder=basin lr_finder.scale=0.5,1,2`` is a three-job sweep around the pick.

    Attributes:
        result: The :class:`~lr_plugins.finder.LRFinderResult` after the test (``None`` before).

    Example:
        >>> import lightning.pytorch as L
        >>> from lr_plugins import LRFinder, WarmupCosine
        >>> finder = LRFinder(num_steps=100)
        >>> trainer = L.Trainer(max_epochs=5, callbacks=[finder, WarmupCosine(warmup=1)])  # doctest: +SKIP
        >>> trainer.fit(model, datamodule=dm)  # doctest: +SKIP
        >>> finder.result.suggestion  # doctest: +SKIP
        0.28
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exponential",
        diverge_threshold: float = 4.0,
        suggestion: str = "steepest",
        apply: bool = True,
        output_dir: str | os.PathLike | None = None,
        beta: float = 0.9,
        smoothing: float | None = None,
        verbose: bool = True,
        scale: float = 1.0,
    ):
        super().__init__()
        self.min_lr = check_real("min_lr", min_lr, low=0.0, low_open=True)
        self.max_lr = check_real("max_lr", max_lr, low=0.0, low_open=True)
        if self.max_lr <= self.min_lr:
            raise ValueError(f"max_lr={max_lr!r} is not allowed: max_lr must be > min_lr={min_lr!r}.")
        self.num_steps = check_int("num_steps", num_steps, low=5)
        self.mode = check_choice("mode", mode, MODES)
        self.diverge_threshold = check_real("diverge_threshold", diverge_threshold, low=1.0, low_open=True)
        self.suggestion = check_choice("suggestion", suggestion, RULES)
        self.apply = check_bool("apply", apply)
        if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"output_dir={output_dir!r} is not allowed: output_dir must be a path or None.")
        self.output_dir = output_dir
        self.beta = check_real("beta", beta, low=0.0, high=1.0, high_open=True)
        self.smoothing = check_real("smoothing", smoothing, low=0.0, low_open=True, optional=True)
        self.verbose = check_bool("verbose", verbose)
        self.scale = check_real("scale", scale, low=0.0, low_open=True)
        self.result: LRFinderResult | None = None
        self.applied: str = "nothing"

    def __repr__(self) -> str:
        return (
            f"LRFinder(min_lr={self.min_lr!r}, max_lr={self.max_lr!r}, num_steps={self.num_steps}, mode={self.mode!r}, "
            f"diverge_threshold={self.diverge_threshold!r}, suggestion={self.suggestion!r}, apply={self.apply}, "
            f"scale={self.scale!r})"
        )

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.result = self.range_test(trainer, pl_module)
        for note in self.result.warnings:
            if trainer.is_global_zero:
                warnings.warn(f"LRFinder: {note}", UserWarning, stacklevel=2)
        if self.apply:
            self.applied = apply_lr(trainer, self.result.suggestion)
        if trainer.is_global_zero:
            self._write_outputs(trainer)
            if self.verbose:
                print(self.result.summary(), flush=True)

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
        suggestion = self.scale * found.suggestions[self.suggestion]
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
            rule=self.suggestion,
            scale=self.scale,
            stop_reason=curve.stop_reason,
            warnings=found.warnings,
            diagnostics=diagnostics,
        )

    # ------------------------------------------------------------------ output
    def resolve_output_dir(self, trainer: pl.Trainer) -> Path | None:
        """``output_dir``, else ``<log_dir>/lr_finder`` when the Trainer has a logger, else ``None``."""
        if self.output_dir is not None:
            return Path(self.output_dir)
        if trainer.loggers and trainer.log_dir:
            return Path(trainer.log_dir) / "lr_finder"
        return None

    def _write_outputs(self, trainer: pl.Trainer) -> None:
        result = self.result
        assert result is not None
        folder = self.resolve_output_dir(trainer)
        tensorboards = [lg for lg in trainer.loggers if type(lg).__name__ == "TensorBoardLogger"]
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
