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
  schedule was changed, refuse another optimizer (:mod:`lr_plugins.optimizer_check`), and
  re-plan or refuse another length of training (:mod:`lr_plugins.length_change`); at every
  epoch's first batch it re-plans when the steps per epoch or the total changed during the fit
  (:mod:`lr_plugins.training_length`).

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
from lightning.pytorch.callbacks import BaseFinetuning, Callback, StochasticWeightAveraging
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_bool, check_choice
from lr_plugins.distributed import on_rank_zero
from lr_plugins.length_change import Plan, replan
from lr_plugins.lr_logging import LRLog, lr_tags, momentum_tags, monitor_logs, should_log
from lr_plugins.optimizer_check import check_optimizers
from lr_plugins.schedule_free import eval_weights, is_schedule_free, schedule_free_twin, set_mode
from lr_plugins.schedule_state import STATE_KEY, check_state, find_state
from lr_plugins.schedules import (
    CommonArgs,
    ConstantCurve,
    Curve,
    CyclicLRArgs,
    CyclicLRCurve,
    ExponentialDecayCurve,
    InverseSqrtCurve,
    InverseTimeDecayCurve,
    OneCycleArgs,
    OneCycleCurve,
    PlateauCurve,
    PolynomialDecayCurve,
    ScheduleFreeCurve,
    SGDRCurve,
    StepDecayCurve,
    WarmupCosineCurve,
    WarmupStableDecayCurve,
)
from lr_plugins.schedules.base import MAX_STEP
from lr_plugins.takeover import take_over_schedulers
from lr_plugins.training_length import batches_done_in_epoch, batches_run_again, steps_per_epoch, total_steps

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
    "PolynomialDecay",
    "InverseSqrt",
    "Plateau",
    "ScheduleFree",
    "lr_tags",
    "momentum_tags",
    "steps_per_epoch",
]

#: The callback's own arguments (not part of the curve): left out of the checkpoint's schedule
#: config, so switching them on resume does not count as a changed schedule.
OPTIONS = {"replace_schedulers": False, "log_lr": True, "on_length_change": "refuse"}
#: What ``on_length_change`` allows (see :class:`ScheduleCallback`).
LENGTH_CHANGES = ("refuse", "continue")


class ScheduleOptions(TypedDict, total=False):
    """The callback's own keyword arguments (see :class:`ScheduleCallback`), typed for type checkers."""

    replace_schedulers: bool
    log_lr: bool
    on_length_change: str


class ScheduleArgs(CommonArgs, ScheduleOptions, total=False):
    """What a public schedule takes besides its own arguments: the shared ones and the options."""


class _CyclicLRArgs(CyclicLRArgs, ScheduleOptions, total=False):
    pass


class _OneCycleArgs(OneCycleArgs, ScheduleOptions, total=False):
    pass


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
        on_length_change: What a resume with another length of training does where the curve
            run so far depends on the length (see :mod:`lr_plugins.length_change`):
            ``"refuse"`` (before any step, with the LR before and after) or ``"continue"``
            (re-plan the rest of the curve from the current LR to the new end). Where the curve
            run so far does not depend on the length, the resume is seamless either way.
        **curve_args: The curve's own arguments (``max_lr``, ``warmup``, ...).

    After a fit, ``ended_early`` tells whether training stopped before the schedule's planned
    end (``max_time``, early stopping, a signal); None before the end of a fit.
    """

    _loaded_state: dict[str, Any] | None = None
    _loaded_optimizers: Any = None
    _fit_started = False
    _driven: Any = None  # manual optimization with several optimizers: the one whose steps are counted
    _driven_steps = 0
    _swa: Any = None  # the StochasticWeightAveraging callback that takes the LR over, if any
    _plan: list[tuple[list[dict], list[float], float, bool]]  # per optimizer: groups, lr ratios, peak, betas
    _ended_early: bool | None = None

    def __init__(
        self,
        *,
        replace_schedulers: bool = False,
        log_lr: bool = True,
        on_length_change: str = "refuse",
        **curve_args: Any,
    ) -> None:
        self.replace_schedulers = check_bool("replace_schedulers", replace_schedulers)
        self.log_lr = check_bool("log_lr", log_lr)
        self.on_length_change = check_choice("on_length_change", on_length_change, LENGTH_CHANGES)
        super().__init__(**curve_args)

    def config(self) -> dict[str, Any]:
        """The constructor arguments: the curve's, then the options (``replace_schedulers``, ...)."""
        cfg = super().config()
        options = {k: cfg.pop(k) for k in OPTIONS if k in cfg}
        return {**cfg, **options}

    def __repr__(self) -> str:
        cfg = self.config()
        cls = cfg.pop("class")
        args = {k: v for k, v in cfg.items() if not (k in OPTIONS and v == OPTIONS[k])}
        return f"{cls}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"

    @property
    def state_key(self) -> str:
        """Where Lightning keeps the schedule's state, ``checkpoint["callbacks"]["lr_plugins.schedule"]``.

        One key for every schedule class, so a resume with another schedule is noticed and a
        resume without any is listed by Lightning among the missing callbacks. The state is
        written by ``on_save_checkpoint`` (not ``state_dict``), so that two schedule callbacks
        reach our own check at fit start instead of Lightning's duplicate-state error.
        """
        return STATE_KEY

    @property
    def fit_steps_per_epoch(self) -> float:
        """Optimizer steps per epoch of the current fit (known from fit start on)."""
        return self._steps_per_epoch

    @property
    def fit_total_steps(self) -> float:
        """Optimizer steps of the current fit, ``inf`` for infinite training (from fit start on)."""
        return self._total_steps

    @property
    def ended_early(self) -> bool | None:
        """Whether the last fit ended before its schedule's planned end (None: no fit has ended yet)."""
        return self._ended_early

    @property
    def length_plan(self) -> Plan:
        """How this fit's optimizer steps map onto the curve (:class:`~lr_plugins.length_change.Plan`)."""
        return self._length_plan

    # ------------------------------------------------------------------ fit start: checks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        name = type(self).__name__
        callbacks = trainer.callbacks  # type: ignore[attr-defined]  # Lightning sets it outside Trainer.__init__
        schedules = [type(c).__name__ for c in callbacks if isinstance(c, ScheduleCallback)]
        if len(schedules) > 1:
            raise ValueError(
                f"The Trainer has {len(schedules)} LR schedule callbacks ({', '.join(schedules)}); each would "
                "overwrite the other's LR. Keep exactly one schedule callback."
            )
        take_over_schedulers(trainer, name, self.replace_schedulers)
        if not trainer.optimizers:
            raise ValueError(f"{name} needs an optimizer: configure_optimizers returned none.")
        self._fit_started = True
        self._check_optimizers(trainer)
        self._base_lrs = [[float(g["lr"]) for g in opt.param_groups] for opt in trainer.optimizers]
        for j, lrs in enumerate(self._base_lrs):
            if not (math.isfinite(lrs[0]) and lrs[0] > 0):
                raise ValueError(
                    f"optimizer {j} has lr={lrs[0]!r} in its first param group; {name} scales "
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
        # Manual optimization may step several optimizers per batch (trainer.global_step counts them
        # all): the schedule follows the steps of the first one.
        many = not pl_module.automatic_optimization and len(trainer.optimizers) > 1
        self._driven = trainer.optimizers[0] if many else None
        self._driven_steps = 0
        spe, total = steps_per_epoch(trainer), total_steps(trainer)
        self._use(Plan(steps_per_epoch=spe, total_steps=total))
        if self.unit == "epoch" and not math.isfinite(spe):
            raise ValueError(
                "unit='epoch' is not allowed with a train dataloader that has no length: the schedule cannot "
                "tell steps per epoch. Use unit='step'."
            )
        if math.isfinite(total) and total >= MAX_STEP:
            key = "max_steps" if trainer.max_steps is not None and 0 <= trainer.max_steps == total else "max_epochs"
            raise ValueError(
                f"trainer {key}={getattr(trainer, key)!r} is not allowed with {name}: the fit would take {total:g} "
                f"optimizer steps and a schedule counts at most 2**53 - 1. Set {key} lower (max_steps=-1 with "
                "max_epochs=-1 trains without end)."
            )
        self.check_total(total, spe)
        self._find_swa(trainer)

    def _check_optimizers(self, trainer: pl.Trainer) -> None:
        """Refuse a resume whose optimizers differ from the checkpoint's (before torch loads their state)."""
        loaded, self._loaded_optimizers = self._loaded_optimizers, None
        if loaded is None:
            return
        states, names = loaded
        if any(isinstance(c, BaseFinetuning) for c in trainer.callbacks):  # type: ignore[attr-defined]
            states = None  # it re-adds its param groups at its own fit start: counts differ until then
        check_optimizers({} if states is None else {"optimizer_states": states}, trainer.optimizers, names)

    def _find_swa(self, trainer: pl.Trainer) -> None:
        swa = [c for c in trainer.callbacks if isinstance(c, StochasticWeightAveraging)]  # type: ignore[attr-defined]
        self._swa = swa[0] if swa else None

    def _peak(self, j: int) -> float:
        return self._base_lrs[j][0] if self.max_lr is None else self.max_lr

    def _check_resume(self, trainer: pl.Trainer, spe: float, total: float) -> Plan:
        """The plan of this fit: the checkpoint's, re-planned for this fit's length (or refused)."""
        state, self._loaded_state = self._loaded_state, None
        fresh = Plan(steps_per_epoch=spe, total_steps=total)
        if state is None:
            return fresh
        now = self._state()
        changed = [k for k in ("config", "base_lrs") if state[k] != now[k]]
        if changed:
            details = "; ".join(f"{k}: {state[k]!r} -> {now[k]!r}" for k in changed)
            rank_zero_warn(
                f"Resuming with a changed LR schedule ({details}). The LR continues from the new schedule "
                "at the restored step, so the curve is not the one the checkpoint was trained with.",
                category=UserWarning,
            )
        old = Plan.from_state(state)
        if old.steps_per_epoch == spe and old.total_steps == total:
            return old
        step = self.schedule_step(trainer)
        follow, cont = replan(self, old, step, spe, total)
        if cont is None:
            self.check_total(follow.curve_total, follow.curve_steps_per_epoch)  # e.g. a warmup now longer than training
            return follow
        if self.on_length_change == "continue":
            return cont
        raise ValueError(self._refusal(trainer, old, follow, step))

    def _refusal(self, trainer: pl.Trainer, old: Plan, new: Plan, step: int) -> str:
        name, peak = type(self).__name__, self._peak(0)
        before = self.lr(old.used_step(step), old.curve_total, old.curve_steps_per_epoch, peak)
        after = self.lr(new.curve_step(step), new.curve_total, new.curve_steps_per_epoch, peak)
        keep = []
        if new.steps_per_epoch != old.steps_per_epoch:
            keep.append(f"{old.steps_per_epoch:g} optimizer steps per epoch: the same accumulate_grad_batches, "
                        "limit_train_batches and data")
        epochs = old.total_steps / old.steps_per_epoch
        same = epochs == trainer.max_epochs and new.steps_per_epoch == old.steps_per_epoch  # Lightning runs more
        if math.isfinite(epochs) and epochs.is_integer() and trainer.max_steps in (None, -1) and not same:
            keep.append(f"trainer.max_epochs={epochs:g}")
        else:
            keep.append(f"trainer.max_steps={old.total_steps:g}")
        again = batches_run_again(trainer)
        cause = (f" (Lightning runs the {again} batches of epoch {trainer.current_epoch} already run again: the checkpoint "
                 "was written inside an epoch of a fit resumed from an epoch's last batch)") if again else ""
        return (
            f"{name} cannot resume at optimizer step {step} with another length of training without a jump in the "
            f"LR: the checkpoint planned {old.total_steps:g} steps ({old.steps_per_epoch:g} per epoch), this fit "
            f"{new.total_steps:g} ({new.steps_per_epoch:g} per epoch){cause}, and step {step} would use LR {after:.6g} "
            f"instead of {before:.6g}. Keep the old length ({', '.join(keep)}), or pass "
            f"{name}(..., on_length_change='continue') (Hydra: ++schedule.on_length_change=continue) to re-plan the "
            "rest of the curve from the current LR to the new end."
        )

    # ------------------------------------------------------------------ train: write + log
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Checkpoint state is restored before this hook with every strategy (not always before fit start).
        # Peaks are read here, not at fit start, so an LR finder that ran at fit start can set max_lr.
        for j in range(len(self._base_lrs)):
            self.check_peak(self._peak(j), "max_lr" if self.max_lr is not None else f"optimizer {j}'s lr")
        if self._loaded_state is not None:
            self._driven_steps = int(self._loaded_state.get("driven_steps", 0))
        total = total_steps(trainer, steps_done=self.schedule_step(trainer))
        self._use(self._check_resume(trainer, steps_per_epoch(trainer), total))
        # Param groups are captured here: restoring a checkpoint replaces the optimizer's group dicts.
        self._plan = [
            (opt.param_groups, [lr / lrs[0] for lr in lrs], self._peak(j), "betas" in opt.defaults)
            for j, (opt, lrs) in enumerate(zip(trainer.optimizers, self._base_lrs))
        ]
        monitor_lr, monitor_momentum = monitor_logs(trainer)
        self._log = LRLog(trainer.optimizers, lr=self.log_lr and not monitor_lr, momentum=self.log_lr and not monitor_momentum)
        self._start = (trainer.current_epoch, batches_done_in_epoch(trainer))
        self._epoch_pending = False
        self._ended_early = None
        self._hand_over_to_swa(trainer, at_start=True)
        self._last_step = -1
        self._apply(self.schedule_step(trainer))

    def schedule_step(self, trainer: pl.Trainer) -> int:
        """The optimizer step the schedule is at: the real step ``k`` of ``length_plan.curve_step(k)``.

        ``trainer.global_step``, except under manual optimization with several optimizers, where
        Lightning counts every optimizer's steps and the schedule those of the first one. What
        follows the schedule's LR (snapshot ensembling) counts steps with this, not ``global_step``.
        """
        return trainer.global_step if self._driven is None else self._driven_steps

    def _use(self, plan: Plan) -> None:
        self._length_plan = plan
        self._steps_per_epoch, self._total_steps = plan.steps_per_epoch, plan.total_steps
        self._curve_total, self._curve_spe = plan.curve_total, plan.curve_steps_per_epoch
        self._warp = (plan.anchor, plan.at, plan.rate) if plan.warped else None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Checked at the epoch's first batch: other callbacks (GradientAccumulationScheduler,
        # BackboneFinetuning, StochasticWeightAveraging) change the fit in this hook too.
        self._epoch_pending = True

    def _epoch_check(self, trainer: pl.Trainer) -> None:
        """At an epoch's first batch: re-plan when the steps per epoch or the total changed; re-write the LR."""
        self._hand_over_to_swa(trainer)
        epoch, done = self._start
        spe = steps_per_epoch(trainer)
        step = self.schedule_step(trainer)
        total = total_steps(trainer, batches_done=done if trainer.current_epoch == epoch else 0, steps_done=step)
        plan = self._length_plan
        if spe != plan.steps_per_epoch or total != plan.total_steps:
            follow, cont = replan(self, plan, step, spe, total)
            self._use(follow if cont is None else cont)
            if step > 0:  # before the first step the new length is simply the plan
                how = ("the rest of the curve is re-planned from the current LR to the new end" if cont is not None
                       else "the curve follows the new length" + (" in epochs" if self.unit == "epoch" else ""))
                message = (f"{type(self).__name__}: the fit changed at epoch {trainer.current_epoch} (optimizer step "
                           f"{step}): {plan.steps_per_epoch:g} -> {spe:g} optimizer steps per epoch, "
                           f"{plan.total_steps:g} -> {total:g} in all; {how}.")
                if cont is not None:
                    rank_zero_warn(message, category=UserWarning)
                else:
                    rank_zero_info(message)
        if self._plan:
            self._apply(self.schedule_step(trainer))  # over any LR another callback wrote in its epoch-start hook

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self._epoch_pending:
            self._epoch_pending = False
            self._epoch_check(trainer)
        # LearningRateMonitor's hook and condition: the LR this batch's optimizer step will use.
        if trainer.loggers and should_log(trainer):
            self._log.write(trainer)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if optimizer is self._driven:
            self._driven_steps += 1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = self.schedule_step(trainer)
        # The next step's LR, none past the last planned step: the optimizer keeps the LR the last step used.
        if self._last_step < step < self._total_steps:
            self._apply(step)

    def _apply(self, step: int) -> None:
        """Write the LR (and cycled momentum) of optimizer step ``step`` into every param group."""
        self._last_step = step
        warp = self._warp
        at: float = step if warp is None else warp[1] + (step - warp[0]) * warp[2]
        total, spe = self._curve_total, self._curve_spe
        momentum = self.momentum(at, total, spe)
        for groups, ratios, peak, betas in self._plan:
            if len(groups) != len(ratios):
                self._join(groups, ratios)
            lr = self.lr(at, total, spe, peak)
            for group, ratio in zip(groups, ratios):
                group["lr"] = lr * ratio
            if momentum is not None:
                for group in groups:
                    if betas:
                        group["betas"] = (momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = momentum

    def _join(self, groups: list[dict], ratios: list[float]) -> None:
        """Param groups added during the fit (BackboneFinetuning) follow the schedule at their ratio to group 0."""
        lr0 = float(groups[0]["lr"]) / ratios[0]
        for i in range(len(ratios), len(groups)):
            ratio = float(groups[i]["lr"]) / lr0 if lr0 > 0 else 1.0
            ratios.append(ratio)
            rank_zero_info(
                f"{type(self).__name__}: param group {i} was added during the fit; it follows the schedule at "
                f"{ratio:.6g} x group 0's LR (its LR when added)."
            )

    def _hand_over_to_swa(self, trainer: pl.Trainer, at_start: bool = False) -> None:
        """From StochasticWeightAveraging's start the LR is its SWALR's: the schedule stops writing it."""
        swa = self._swa
        if swa is None:
            return
        start = swa.swa_start
        if at_start:
            rank_zero_warn(
                f"{type(self).__name__} hands the LR over to StochasticWeightAveraging from epoch {start} (its "
                "swa_epoch_start): from then on SWA's SWALR sets the LR (swa_lrs) and the schedule only logs it.",
                category=UserWarning,
            )
        if trainer.current_epoch >= start:
            self._plan = []

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step, planned = self.schedule_step(trainer), self._total_steps
        self._ended_early = bool(math.isfinite(planned) and step < planned)
        if self._ended_early and self._plan:
            peak = self._plan[0][2]
            now = float(trainer.optimizers[0].param_groups[0]["lr"])
            plan = self._length_plan
            last = plan.curve_step(int(planned) - 1)
            end = self.lr(last, self._curve_total, self._curve_spe, peak)
            rank_zero_warn(
                f"{type(self).__name__}: training ended after {step} of the {planned:g} planned optimizer steps "
                f"(max_time, early stopping or a stop request): the LR is {now:.6g}, where the schedule would have "
                f"ended at {end:.6g}.",
                category=UserWarning,
            )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_started = False

    # ------------------------------------------------------------------ checkpoint
    def _state(self) -> dict[str, Any]:
        config = {k: v for k, v in self.config().items() if k not in OPTIONS}
        state: dict[str, Any] = {
            "config": config,
            "base_lrs": self._base_lrs,
            "steps_per_epoch": self._steps_per_epoch,
            "total_steps": self._total_steps,
        }
        plan = getattr(self, "_length_plan", None)
        if plan is not None and plan.warped:
            state["warp"] = plan.to_state()
        if self._driven is not None:
            state["driven_steps"] = self._driven_steps
        return state

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if hasattr(self, "_base_lrs"):
            state = {**self._state(), "optimizers": [type(o).__name__ for o in trainer.optimizers]}
            checkpoint.setdefault("callbacks", {})[STATE_KEY] = state

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        # Earlier versions kept the state at checkpoint["lr_plugins.schedule"]: still read.
        found = find_state(checkpoint)
        self._loaded_state = None if found is None else check_state(found[1], found[0])
        if self._loaded_state is not None:
            state = self._loaded_state
            self._loaded_optimizers = (checkpoint.get("optimizer_states"), state.get("optimizers"))
            if self._fit_started and trainer.optimizers:  # a strategy that restores after fit start
                self._check_optimizers(trainer)


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


class PolynomialDecay(ScheduleCallback, PolynomialDecayCurve):
    __doc__ = _doc(PolynomialDecayCurve, "max_lr=0.1, warmup=1, power=1.0")

    def __init__(self, *, power: float = 1.0, **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(power=power, **kwargs)


class InverseSqrt(ScheduleCallback, InverseSqrtCurve):
    __doc__ = _doc(InverseSqrtCurve, "max_lr=0.1, warmup=1")

    def __init__(self, *, timescale: float | None = None, **kwargs: Unpack[ScheduleArgs]) -> None:
        super().__init__(timescale=timescale, **kwargs)


class Plateau(ScheduleCallback, PlateauCurve):
    __doc__ = _doc(PlateauCurve, "max_lr=0.1, monitor='val_loss', patience=3")

    #: Where a checkpoint keeps the rule's state (best value, counters, reductions).
    STATE = "lr_plugins.plateau"
    _pending_rule: dict[str, Any] | None = None

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        **kwargs: Unpack[ScheduleArgs],
    ) -> None:
        super().__init__(monitor=monitor, mode=mode, factor=factor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, cooldown=cooldown, **kwargs)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        self.reset()  # a fit starts the rule afresh; a resumed one gets its state back at train start

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pending, self._pending_rule = self._pending_rule, None
        if pending is not None:
            self.load_rule_state(pending)
        super().on_train_start(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._feed(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.enable_validation:  # no validation in this fit: the epoch's training metrics
            self._feed(trainer)

    def _feed(self, trainer: pl.Trainer) -> None:
        """Give the rule the monitored value (from the end of the warmup on); rewrite the LR if it dropped.

        All ranks follow rank 0's value (one LR everywhere, also with unsynced metrics); a metric
        that rank 0 does not have stops every rank with the same error, never rank 0 or 1 alone.
        """

        def observed() -> float:
            value = trainer.callback_metrics.get(self.monitor)
            if value is None:
                logged = ", ".join(repr(k) for k in sorted(trainer.callback_metrics)) or "none"
                raise ValueError(
                    f"monitor={self.monitor!r} is not allowed: no metric of that name is logged (logged: {logged}); "
                    "set monitor to one of them, or log it with self.log in validation_step."
                )
            return float(value)

        seen = on_rank_zero(trainer, observed)
        step = self.schedule_step(trainer)
        # The warmup in curve steps: a re-planned fit (another accumulation on resume, ...) runs the
        # curve at v(step), with the plan's steps per epoch and total.
        plan = self._length_plan
        if plan.curve_step(step) < self.warmup * self.steps_per_unit(plan.curve_steps_per_epoch, plan.curve_total):
            return  # still warming up: a plateau of the rising LR means nothing
        if self.observe(seen, self._peak(0)):
            self._apply(step)  # the next optimizer step uses the reduced LR

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        checkpoint[self.STATE] = self.rule_state()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
        self._pending_rule = checkpoint.get(self.STATE)


class ScheduleFree(ScheduleCallback, ScheduleFreeCurve):
    __doc__ = _doc(ScheduleFreeCurve, "max_lr=0.1, warmup=1, replace_optimizer=True").replace(
        "    Every schedule is", """    Args:
        replace_optimizer: Swap each plain ``SGD``/``Adam``/``AdamW`` the module returns for its
            schedule-free version at fit start (same param groups, LRs and weight decay; see
            :func:`lr_plugins.schedule_free.schedule_free_twin`). ``False``: a plain optimizer is refused.

    Every schedule is""", 1)

    #: The callback's own arguments beyond the curve's and the shared options.
    own_options = ("replace_optimizer",)

    def __init__(self, *, replace_optimizer: bool = False, **kwargs: Unpack[ScheduleArgs]) -> None:
        self.replace_optimizer = check_bool("replace_optimizer", replace_optimizer)
        super().__init__(**kwargs)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        name = type(self).__name__
        if self.replace_optimizer:
            take_over_schedulers(trainer, name, self.replace_schedulers)  # first: it restores the old groups' LRs
            trainer.optimizers = [o if is_schedule_free(o) else schedule_free_twin(o, name) for o in trainer.optimizers]
        plain = [type(o).__name__ for o in trainer.optimizers if not is_schedule_free(o)]
        if plain:
            raise ValueError(
                f"{name} needs schedule-free optimizers (schedulefree.SGDScheduleFree, AdamWScheduleFree, ...), but "
                f"configure_optimizers returned {', '.join(plain)}: return one, or pass replace_optimizer=True "
                "(+schedule.replace_optimizer=true under Hydra) to swap SGD/Adam/AdamW for it at fit start."
            )
        super().on_fit_start(trainer, pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer.optimizers, "train")  # also turns weights saved in eval mode back into training ones
        super().on_train_start(trainer, pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        set_mode(trainer.optimizers, "train")  # after a validation or a checkpoint, before the next step
        super().on_train_batch_start(trainer, pl_module, *args)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer.optimizers, "eval")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer.optimizers, "eval")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer.optimizers, "eval")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer.optimizers, "eval")  # a fit ends with the averaged weights in the module

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Save the averaged (eval) weights, with the optimizers marked as in eval mode.

        Saved during training, the live weights are put back bit for bit afterwards, so that
        saving a checkpoint does not change the run; a fit resumed from it turns the averaged
        weights back into training ones (``train()``), exact up to float rounding.
        """
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        with eval_weights(trainer.optimizers) as switched:
            if switched:
                checkpoint["state_dict"] = {k: v.clone() for k, v in trainer.strategy.lightning_module_state_dict().items()}
        for state in checkpoint.get("optimizer_states", []):
            for group in state.get("param_groups", []):
                group["train_mode"] = False
