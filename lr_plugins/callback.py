"""The Lightning glue: the one place that talks to the Trainer.

:class:`ScheduleCallback` turns a pure curve (:mod:`lr_plugins.schedules`) into a callback:

* at fit start it reads the optimizer steps per epoch (gradient accumulation counted) and the
  total steps from the Trainer, checks everything that depends on them, and records each param
  group's configured LR;
* it writes the LR of optimizer step ``k`` into every param group of every optimizer before
  step ``k`` runs (right after step ``k - 1``, and at train start for the first step or a resume),
  so whatever reads the optimizer (LearningRateMonitor, the module) sees the LR that is used;
* it logs that LR (and the cycled momentum) at step ``k`` with LearningRateMonitor's tag names;
* its checkpoint state lets a resumed run warn when the schedule was changed.

Group ``i`` of an optimizer gets ``lr(step; peak) * lr_i / lr_0``, with ``peak = max_lr`` or,
when ``max_lr`` is None, that optimizer's configured ``lr_0``: every group keeps its ratio.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from lr_plugins.schedules import (
    ConstantCurve,
    Curve,
    CyclicLRCurve,
    ExponentialDecayCurve,
    InverseTimeDecayCurve,
    OneCycleCurve,
    SGDRCurve,
    StepDecayCurve,
    WarmupCosineCurve,
)

__all__ = [
    "ScheduleCallback",
    "WarmupCosine",
    "SGDR",
    "CyclicLR",
    "OneCycle",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "Constant",
    "lr_tags",
    "steps_per_epoch",
]


def steps_per_epoch(trainer: pl.Trainer) -> float:
    """Optimizer steps in one training epoch: ``ceil(batches / accumulate_grad_batches)``.

    ``inf`` for an unsized train dataloader.
    """
    if trainer.train_dataloader is None:
        trainer.fit_loop.setup_data()
    batches = trainer.num_training_batches
    if not math.isfinite(batches):
        return math.inf
    return float(math.ceil(batches / trainer.accumulate_grad_batches))


def total_steps(trainer: pl.Trainer) -> float:
    """Optimizer steps the fit will take, ``inf`` for infinite training."""
    total = trainer.estimated_stepping_batches
    return math.inf if total is None or total < 0 else float(total)


def lr_tags(optimizers: list[Any], prefix: str = "lr") -> list[list[str]]:
    """Logger tags per optimizer and param group, as Lightning's LearningRateMonitor names them.

    ``lr-SGD``; ``lr-SGD/pg1``, ``lr-SGD/pg2`` (or the group's ``name``) with several groups;
    ``lr-SGD-1`` for a second optimizer of the same class. ``prefix="momentum"`` gives the
    momentum tags (``momentum-SGD``).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)]}], lr=0.1)
        >>> lr_tags([opt])
        [['lr-SGD/pg1', 'lr-SGD/pg2']]
    """
    seen: dict[type, int] = {}
    tags = []
    for opt in optimizers:
        cls = type(opt)
        seen[cls] = seen.get(cls, 0) + 1
        name = f"{prefix}-{cls.__name__}" + (f"-{seen[cls] - 1}" if seen[cls] > 1 else "")
        groups = opt.param_groups
        if len(groups) > 1:
            tags.append([f"{name}/{g.get('name', f'pg{i + 1}')}" for i, g in enumerate(groups)])
        else:
            tags.append([f"{name}/{groups[0]['name']}" if "name" in groups[0] else name])
    return tags


class ScheduleCallback(Callback):
    """Mixin that runs a :class:`~lr_plugins.schedules.Curve` inside a Lightning Trainer.

    The public schedule classes (``SGDR``, ``WarmupCosine``, ...) combine this with their curve;
    use them rather than this class.
    """

    _loaded_state: dict[str, Any] | None = None
    _plan: list[tuple[list[dict], list[float], float, bool]] | None = None

    @property
    def fit_steps_per_epoch(self) -> float:
        """Optimizer steps per epoch of the current fit (known from fit start on)."""
        return self._steps_per_epoch

    @property
    def fit_total_steps(self) -> float:
        """Optimizer steps of the current fit, ``inf`` for infinite training (from fit start on)."""
        return self._total_steps

    #: Where the checkpoint keeps the schedule's state: ``checkpoint[STATE_KEY]``. One
    #: key for every schedule class, so a resume with another schedule is noticed. It is written by
    #: ``on_save_checkpoint`` rather than ``state_dict`` so that two schedule callbacks reach our
    #: own check at fit start (with its advice) instead of Lightning's duplicate-state error.
    STATE_KEY = "lr_plugins.schedule"

    # ------------------------------------------------------------------ fit start: checks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(self, Curve)
        if trainer.lr_scheduler_configs:
            sched = type(trainer.lr_scheduler_configs[0].scheduler).__name__
            raise ValueError(
                f"{type(self).__name__} sets the LR, but configure_optimizers also returns an LR scheduler "
                f"({sched}): two things would fight over the LR. Return only the optimizer from "
                f"configure_optimizers, or remove {type(self).__name__} from the Trainer's callbacks."
            )
        schedules = [type(c).__name__ for c in trainer.callbacks if isinstance(c, ScheduleCallback)]
        if len(schedules) > 1:
            raise ValueError(
                f"The Trainer has {len(schedules)} LR schedule callbacks ({', '.join(schedules)}); each would "
                "overwrite the other's LR. Keep exactly one schedule callback."
            )
        if not trainer.optimizers:
            raise ValueError(f"{type(self).__name__} needs an optimizer: configure_optimizers returned none.")
        self._base_lrs = [[float(g["lr"]) for g in opt.param_groups] for opt in trainer.optimizers]
        for j, lrs in enumerate(self._base_lrs):
            if not (math.isfinite(lrs[0]) and lrs[0] > 0):
                raise ValueError(
                    f"optimizer {j} has lr={lrs[0]!r} in its first param group; {type(self).__name__} scales "
                    "every group by lr_i / lr_0 and needs a finite lr_0 > 0 (set the optimizer's lr)."
                )
        if self.cycles_momentum:
            for opt in trainer.optimizers:
                if "betas" not in opt.defaults and "momentum" not in opt.defaults:
                    raise ValueError(
                        f"cycle_momentum=True is not allowed with {type(opt).__name__}: it has neither "
                        "'momentum' nor 'betas'. Set cycle_momentum=False or use SGD/Adam-like optimizers."
                    )
        self._steps_per_epoch = steps_per_epoch(trainer)
        self._total_steps = total_steps(trainer)
        if self.unit == "epoch" and not math.isfinite(self._steps_per_epoch):
            raise ValueError(
                "unit='epoch' is not allowed with a train dataloader that has no length: the schedule cannot "
                "tell steps per epoch. Use unit='step'."
            )
        self.check_total(self._total_steps, self._steps_per_epoch)

    def _peak(self, j: int) -> float:
        return self._base_lrs[j][0] if self.max_lr is None else self.max_lr

    def _check_resume(self) -> None:
        state, self._loaded_state = self._loaded_state, None
        if state is None:
            return
        now = self._state()
        keys = ("config", "base_lrs", "steps_per_epoch") + (("total_steps",) if self.needs_total else ())
        changed = [k for k in keys if state.get(k) != now[k]]
        if changed:
            details = "; ".join(f"{k}: {state.get(k)!r} -> {now[k]!r}" for k in changed)
            warnings.warn(
                f"Resuming with a changed LR schedule ({details}). The LR continues from the new schedule "
                "at the restored step, so the curve is not the one the checkpoint was trained with.",
                UserWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ train: write + log
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Checkpoint state is restored before this hook with every strategy (not always before fit start).
        self._check_resume()
        # Peaks are read here, not at fit start, so an LR finder that ran at fit start can set max_lr.
        for j in range(len(self._base_lrs)):
            self.check_peak(self._peak(j), "max_lr" if self.max_lr is not None else f"optimizer {j}'s lr")
        momentum_names = lr_tags(trainer.optimizers, "momentum")
        self._plan = [
            (opt.param_groups, [lr / lrs[0] for lr in lrs], self._peak(j), "betas" in opt.defaults)
            for j, (opt, lrs) in enumerate(zip(trainer.optimizers, self._base_lrs))
        ]
        self._tags = lr_tags(trainer.optimizers)
        self._momentum_tags = momentum_names
        self._loggers = trainer.loggers
        self._last_step = -1
        self._apply(trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step != self._last_step:
            self._apply(step)

    def _apply(self, step: int) -> None:
        """Write the LR (and momentum) of optimizer step ``step`` into every group, then log it."""
        self._last_step = step
        total, spe = self._total_steps, self._steps_per_epoch
        metrics: dict[str, float] = {}
        momentum = self.momentum(step, total, spe)
        for (groups, ratios, peak, betas), tags, mtags in zip(self._plan, self._tags, self._momentum_tags):
            lr = self.lr(step, total, spe, peak)
            for group, ratio, tag in zip(groups, ratios, tags):
                group["lr"] = metrics[tag] = lr * ratio
            if momentum is not None:
                for group, tag in zip(groups, mtags):
                    if betas:
                        group["betas"] = (momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = momentum
                    metrics[tag] = momentum
        if step < total:  # no point for the step after the last one: it never runs
            for logger in self._loggers:
                logger.log_metrics(metrics, step=step)

    # ------------------------------------------------------------------ checkpoint
    def _state(self) -> dict[str, Any]:
        return {
            "config": self.config(),
            "base_lrs": self._base_lrs,
            "steps_per_epoch": self._steps_per_epoch,
            "total_steps": self._total_steps,
        }

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if hasattr(self, "_base_lrs"):
            checkpoint[self.STATE_KEY] = self._state()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._loaded_state = dict(checkpoint.get(self.STATE_KEY) or {}) or None


# ---------------------------------------------------------------------- the public schedules
_EXAMPLE = """

    Every schedule is a Lightning callback; ``configure_optimizers`` returns a plain optimizer.

    Example:
        >>> import lightning.pytorch as L
        >>> from lr_plugins import {name}
        >>> trainer = L.Trainer(max_epochs=30, callbacks=[{name}({args})])  # doctest: +SKIP
"""


def _doc(curve: type[Curve], args: str) -> str:
    name = curve.__name__.removesuffix("Curve")
    return (curve.__doc__ or "").split("    Example:")[0].rstrip() + _EXAMPLE.format(name=name, args=args)


class WarmupCosine(WarmupCosineCurve, ScheduleCallback):
    __doc__ = _doc(WarmupCosineCurve, "max_lr=0.1, warmup=2")


class SGDR(SGDRCurve, ScheduleCallback):
    __doc__ = _doc(SGDRCurve, "max_lr=0.1, cycle_length=2, cycle_mult=2")


class CyclicLR(CyclicLRCurve, ScheduleCallback):
    __doc__ = _doc(CyclicLRCurve, "max_lr=0.1, min_lr=0.025, step_size=2")


class OneCycle(OneCycleCurve, ScheduleCallback):
    __doc__ = _doc(OneCycleCurve, "max_lr=0.1")


class StepDecay(StepDecayCurve, ScheduleCallback):
    __doc__ = _doc(StepDecayCurve, "max_lr=0.1, milestones=[15, 22]")


class ExponentialDecay(ExponentialDecayCurve, ScheduleCallback):
    __doc__ = _doc(ExponentialDecayCurve, "max_lr=0.1, rate=0.1")


class InverseTimeDecay(InverseTimeDecayCurve, ScheduleCallback):
    __doc__ = _doc(InverseTimeDecayCurve, "max_lr=0.1, rate=0.5")


class Constant(ConstantCurve, ScheduleCallback):
    __doc__ = _doc(ConstantCurve, "max_lr=0.1, warmup=1")
