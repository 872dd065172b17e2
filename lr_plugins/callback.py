"""The Lightning glue: the one place that talks to the Trainer.

:class:`ScheduleCallback` turns a pure curve (:mod:`lr_plugins.schedules`) into a callback:

* at fit start it reads the optimizer steps per epoch (gradient accumulation counted) and the
  total steps from the Trainer, checks everything that depends on them, records each param
  group's configured LR and, with ``replace_schedulers=True``, takes over from the schedulers
  ``configure_optimizers`` returned (:mod:`lr_plugins.takeover`);
* it writes the LR of optimizer step ``k`` into every param group of every optimizer before
  step ``k`` runs (right after step ``k - 1``, and at train start for the first step or a resume),
  so whatever reads the optimizer (LearningRateMonitor, the module) sees the LR that is used;
* it logs the LR and momentum of every group exactly as
  ``LearningRateMonitor(logging_interval="step", log_momentum=True)`` would
  (:mod:`lr_plugins.lr_logging`): same tags, same steps under any ``log_every_n_steps``;
* its checkpoint state (:mod:`lr_plugins.schedule_state`) lets a resumed run warn when the
  schedule was changed.

Group ``i`` of an optimizer gets ``lr(step; peak) * lr_i / lr_0``, with ``peak = max_lr`` or,
when ``max_lr`` is None, that optimizer's configured ``lr_0``: every group keeps its ratio.

Example:
    >>> from lr_plugins import SGDR
    >>> SGDR(max_lr=0.1, cycle_length=2, replace_schedulers=True, log_lr=False)  # doctest: +NORMALIZE_WHITESPACE
    SGDR(cycle_length=2.0, cycle_mult=1.0, cycle_decay=1.0, max_lr=0.1, min_lr=0.0, warmup=0.0,
    warmup_start_lr=0.0, unit='epoch', replace_schedulers=True, log_lr=False)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypedDict

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_bool
from lr_plugins.lr_logging import LRLog, lr_tags, momentum_tags, monitor_logs, should_log
from lr_plugins.schedule_state import STATE_KEY, check_state
from lr_plugins.schedules import (
    CommonArgs,
    ConstantCurve,
    Curve,
    CyclicLRArgs,
    CyclicLRCurve,
    ExponentialDecayCurve,
    InverseTimeDecayCurve,
    OneCycleArgs,
    OneCycleCurve,
    SGDRCurve,
    StepDecayCurve,
    WarmupCosineCurve,
    WarmupStableDecayCurve,
)
from lr_plugins.takeover import take_over_schedulers

__all__ = [
    "ScheduleCallback",
    "ScheduleOptions",
    "ScheduleArgs",
    "WarmupCosine",
    "SGDR",
    "CyclicLR",
    "OneCycle",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "Constant",
    "WarmupStableDecay",
    "lr_tags",
    "momentum_tags",
    "steps_per_epoch",
]

#: The callback's own arguments (not part of the curve): left out of the checkpoint's schedule
#: config, so switching them on resume does not count as a changed schedule.
OPTIONS = {"replace_schedulers": False, "log_lr": True}


class ScheduleOptions(TypedDict, total=False):
    """The callback's own keyword arguments (see :class:`ScheduleCallback`), typed for type checkers."""

    replace_schedulers: bool
    log_lr: bool


class ScheduleArgs(CommonArgs, ScheduleOptions, total=False):
    """What a public schedule takes besides its own arguments: the shared ones and the options."""


class _CyclicLRArgs(CyclicLRArgs, ScheduleOptions, total=False):
    pass


class _OneCycleArgs(OneCycleArgs, ScheduleOptions, total=False):
    pass


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


class ScheduleCallback(Callback, Curve):
    """Base of the public schedules: runs a :class:`~lr_plugins.schedules.Curve` inside a Lightning Trainer.

    The public schedule classes (``SGDR``, ``WarmupCosine``, ...) combine this with their curve
    (``class SGDR(ScheduleCallback, SGDRCurve)``); use them rather than this class. Its keyword
    arguments come on top of the curve's:

    Args:
        replace_schedulers: Let the schedule take over from LR schedulers that the module's
            ``configure_optimizers`` returns (they are removed at fit start with a warning that
            names them, as ``StochasticWeightAveraging`` does). ``False``: such a module is refused.
        log_lr: Log the LR and momentum of every param group as
            ``LearningRateMonitor(logging_interval="step", log_momentum=True)`` does. Tags that a
            LearningRateMonitor among the callbacks already logs are left to it.
        **curve_args: The curve's own arguments (``max_lr``, ``warmup``, ...).
    """

    _loaded_state: dict[str, Any] | None = None
    _plan: list[tuple[list[dict], list[float], float, bool]]  # per optimizer: groups, lr ratios, peak, betas

    def __init__(self, *, replace_schedulers: bool = False, log_lr: bool = True, **curve_args: Any) -> None:
        self.replace_schedulers = check_bool("replace_schedulers", replace_schedulers)
        self.log_lr = check_bool("log_lr", log_lr)
        super().__init__(**curve_args)

    def config(self) -> dict[str, Any]:
        """The constructor arguments: the curve's, then ``replace_schedulers`` and ``log_lr``."""
        cfg = super().config()
        options = {k: cfg.pop(k) for k in OPTIONS if k in cfg}
        return {**cfg, **options}

    def __repr__(self) -> str:
        cfg = self.config()
        cls = cfg.pop("class")
        args = {k: v for k, v in cfg.items() if not (k in OPTIONS and v == OPTIONS[k])}
        return f"{cls}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"

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
    STATE_KEY = STATE_KEY

    # ------------------------------------------------------------------ fit start: checks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        callbacks = trainer.callbacks  # type: ignore[attr-defined]  # Lightning sets it outside Trainer.__init__
        schedules = [type(c).__name__ for c in callbacks if isinstance(c, ScheduleCallback)]
        if len(schedules) > 1:
            raise ValueError(
                f"The Trainer has {len(schedules)} LR schedule callbacks ({', '.join(schedules)}); each would "
                "overwrite the other's LR. Keep exactly one schedule callback."
            )
        take_over_schedulers(trainer, type(self).__name__, self.replace_schedulers)
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
        if self.log_lr:
            LRLog(trainer.optimizers)  # refuses param group names that would share a tag
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
        changed = [k for k in keys if state[k] != now[k]]
        if changed:
            details = "; ".join(f"{k}: {state[k]!r} -> {now[k]!r}" for k in changed)
            rank_zero_warn(
                f"Resuming with a changed LR schedule ({details}). The LR continues from the new schedule "
                "at the restored step, so the curve is not the one the checkpoint was trained with.",
                category=UserWarning,
            )

    # ------------------------------------------------------------------ train: write + log
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Checkpoint state is restored before this hook with every strategy (not always before fit start).
        self._check_resume()
        # Peaks are read here, not at fit start, so an LR finder that ran at fit start can set max_lr.
        for j in range(len(self._base_lrs)):
            self.check_peak(self._peak(j), "max_lr" if self.max_lr is not None else f"optimizer {j}'s lr")
        # Param groups are captured here: restoring a checkpoint replaces the optimizer's group dicts.
        self._plan = [
            (opt.param_groups, [lr / lrs[0] for lr in lrs], self._peak(j), "betas" in opt.defaults)
            for j, (opt, lrs) in enumerate(zip(trainer.optimizers, self._base_lrs))
        ]
        monitor_lr, monitor_momentum = monitor_logs(trainer)
        self._log = LRLog(trainer.optimizers, lr=self.log_lr and not monitor_lr, momentum=self.log_lr and not monitor_momentum)
        self._last_step = -1
        self._apply(trainer.global_step)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        # LearningRateMonitor's hook and condition: the LR this batch's optimizer step will use.
        if trainer.loggers and should_log(trainer):
            self._log.write(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step != self._last_step:
            self._apply(step)

    def _apply(self, step: int) -> None:
        """Write the LR (and cycled momentum) of optimizer step ``step`` into every param group."""
        self._last_step = step
        total, spe = self._total_steps, self._steps_per_epoch
        momentum = self.momentum(step, total, spe)
        for groups, ratios, peak, betas in self._plan:
            lr = self.lr(step, total, spe, peak)
            for group, ratio in zip(groups, ratios):
                group["lr"] = lr * ratio
            if momentum is not None:
                for group in groups:
                    if betas:
                        group["betas"] = (momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = momentum

    # ------------------------------------------------------------------ checkpoint
    def _state(self) -> dict[str, Any]:
        config = {k: v for k, v in self.config().items() if k not in OPTIONS}
        return {
            "config": config,
            "base_lrs": self._base_lrs,
            "steps_per_epoch": self._steps_per_epoch,
            "total_steps": self._total_steps,
        }

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if hasattr(self, "_base_lrs"):
            checkpoint[STATE_KEY] = self._state()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._loaded_state = check_state(checkpoint[STATE_KEY]) if STATE_KEY in checkpoint else None


# ---------------------------------------------------------------------- the public schedules
_EXAMPLE = """

    Every schedule is a Lightning callback; ``configure_optimizers`` returns a plain optimizer, or
    pass ``replace_schedulers=True`` to take over from the scheduler it returns. ``log_lr=False`` turns
    off the LR/momentum logging (LearningRateMonitor's tags and steps). See
    :class:`~lr_plugins.callback.ScheduleCallback`.

    Example:
        >>> import lightning.pytorch as L
        >>> from lr_plugins import {name}
        >>> trainer = L.Trainer(max_epochs=30, callbacks=[{name}({args})])  # doctest: +SKIP
"""


def _doc(curve: type[Curve], args: str) -> str:
    name = curve.__name__.removesuffix("Curve")
    return (curve.__doc__ or "").split("    Example:")[0].rstrip() + _EXAMPLE.format(name=name, args=args)


# Each public class spells out its curve's own arguments (names, types, defaults: a test checks
# they are the curve's) so that type checkers and IDEs see the whole signature; the shared ones
# and the options come through a TypedDict.


class WarmupCosine(ScheduleCallback, WarmupCosineCurve):
    __doc__ = _doc(WarmupCosineCurve, "max_lr=0.1, warmup=2")

    def __init__(self, *, hold: float = 0, **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(hold=hold, **kwargs)


class SGDR(ScheduleCallback, SGDRCurve):
    __doc__ = _doc(SGDRCurve, "max_lr=0.1, cycle_length=2, cycle_mult=2")

    def __init__(
        self,
        *,
        cycle_length: float | None = None,
        cycle_mult: float = 1.0,
        cycle_decay: float = 1.0,
        **kwargs: Unpack[ScheduleArgs],
    ) -> None:
        super().__init__(cycle_length=cycle_length, cycle_mult=cycle_mult, cycle_decay=cycle_decay, **kwargs)


class CyclicLR(ScheduleCallback, CyclicLRCurve):
    __doc__ = _doc(CyclicLRCurve, "max_lr=0.1, min_lr=0.025, step_size=2")

    def __init__(
        self,
        *,
        step_size: float,
        mode: str = "triangular",
        gamma: float = 1.0,
        min_lr: float | None = 0.0,
        **kwargs: Unpack[_CyclicLRArgs],
    ) -> None:
        super().__init__(step_size=step_size, mode=mode, gamma=gamma, min_lr=min_lr, **kwargs)


class OneCycle(ScheduleCallback, OneCycleCurve):
    __doc__ = _doc(OneCycleCurve, "max_lr=0.1")

    def __init__(
        self,
        *,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal: str = "cos",
        three_phase: bool = False,
        **kwargs: Unpack[_OneCycleArgs],
    ) -> None:
        super().__init__(pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor,
                         anneal=anneal, three_phase=three_phase, **kwargs)


class StepDecay(ScheduleCallback, StepDecayCurve):
    __doc__ = _doc(StepDecayCurve, "max_lr=0.1, milestones=[15, 22]")

    def __init__(
        self,
        *,
        step_size: float | None = None,
        gamma: float = 0.1,
        milestones: Sequence[float] | None = None,
        **kwargs: Unpack[ScheduleArgs],
    ) -> None:
        super().__init__(step_size=step_size, gamma=gamma, milestones=milestones, **kwargs)


class ExponentialDecay(ScheduleCallback, ExponentialDecayCurve):
    __doc__ = _doc(ExponentialDecayCurve, "max_lr=0.1, rate=0.1")

    def __init__(self, *, rate: float, staircase: bool = False, **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(rate=rate, staircase=staircase, **kwargs)


class InverseTimeDecay(ScheduleCallback, InverseTimeDecayCurve):
    __doc__ = _doc(InverseTimeDecayCurve, "max_lr=0.1, rate=0.5")

    def __init__(self, *, rate: float, staircase: bool = False, **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(rate=rate, staircase=staircase, **kwargs)


class Constant(ScheduleCallback, ConstantCurve):
    __doc__ = _doc(ConstantCurve, "max_lr=0.1, warmup=1")

    def __init__(self, **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(**kwargs)


class WarmupStableDecay(ScheduleCallback, WarmupStableDecayCurve):
    __doc__ = _doc(WarmupStableDecayCurve, "max_lr=0.1, warmup=1, decay=0.2")

    def __init__(self, *, decay: float = 0.2, decay_shape: str = "1-sqrt", **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(decay=decay, decay_shape=decay_shape, **kwargs)
