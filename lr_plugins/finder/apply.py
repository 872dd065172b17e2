"""Put the found LR where training will use it.

* A schedule callback (:class:`lr_plugins.callback.ScheduleCallback`) in the Trainer gets it
  through its own ``set_peak(lr)``, the one hand-off: the schedule validates it (its floors must
  fit under the peak) and moves whatever else it ties to the peak (CyclicLR its floor, in its own
  override). A refused pick (``ValueError``) changes nothing and warns.
* No schedule callback: group ``i`` of the first optimizer gets ``pick * peak_i / peak_0`` (the
  configured ratios are kept). A torch LR scheduler the module returned is rescaled with it, so
  it does not overwrite the pick at its next step: every LR-valued field (``base_lrs``,
  ``initial_lr``, ``_last_lr``, OneCycleLR's ``max_lr``/``min_lr``, torch CyclicLR's ``max_lrs``) of
  group ``i`` is multiplied by ``pick * peak_i / peak_0 / peak_i_old``, where a group's peak is
  OneCycleLR's ``max_lr``, torch CyclicLR's ``max_lrs[i]``, else the scheduler's ``base_lrs[i]``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

__all__ = ["apply_lr", "apply_to_schedule"]

_GROUP_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


def _peaks(optimizer: Any, schedulers: list[Any]) -> list[float]:
    """Each group's peak: that of the first torch scheduler that knows it, else the group's lr."""
    for s in schedulers:
        if hasattr(s, "max_lrs"):  # torch CyclicLR
            return [float(v) for v in s.max_lrs]
        if all("max_lr" in g for g in optimizer.param_groups):  # OneCycleLR
            return [float(g["max_lr"]) for g in optimizer.param_groups]
        if hasattr(s, "base_lrs"):
            return [float(v) for v in s.base_lrs]
    return [float(g["lr"]) for g in optimizer.param_groups]


def _scale_list(scheduler: Any, attr: str, factors: list[float]) -> None:
    """Multiply the per-group list ``scheduler.<attr>`` (when it has one per group) by ``factors``."""
    values = getattr(scheduler, attr, None)
    if isinstance(values, list) and len(values) == len(factors):
        setattr(scheduler, attr, [v * f for v, f in zip(values, factors)])


def _scale_last_lr(scheduler: Any, factors: list[float]) -> None:
    """Rescale what ``scheduler.get_last_lr()`` returns, so it reports the applied pick.

    The one use of torch internals in this module (checked against torch 2.13; listed in
    tests/test_private_api.py): ``LRScheduler.get_last_lr()`` returns the private ``_last_lr``
    and torch has no public setter for it. tests/test_finder_apply.py reads ``get_last_lr()``
    back after a pick is applied.
    """
    values = getattr(scheduler, "_last_lr", None)  # absent on a scheduler that is no torch LRScheduler
    if isinstance(values, list) and len(values) == len(factors):
        scheduler._last_lr = [v * f for v, f in zip(values, factors)]


def apply_to_schedule(schedule: Any, lr: float) -> str:
    """``schedule.set_peak(lr)``; return what changed, or warn and return ``"nothing"`` if it refused."""
    before = schedule.config()
    try:
        schedule.set_peak(lr)
    except ValueError as e:
        warnings.warn(
            f"LRFinder: the pick lr={lr:.3g} does not fit {type(schedule).__name__}: {e} max_lr was left "
            "unchanged. Lower that floor or widen the finder's range.",
            UserWarning,
            stacklevel=3,
        )
        return "nothing"
    after = schedule.config()
    changed = [f"{k}={after[k]:.3g}" if isinstance(after[k], float) else f"{k}={after[k]!r}"
               for k in after if after[k] != before.get(k)] or [f"max_lr={lr:.3g}"]
    return f"{type(schedule).__name__}." + ", ".join(changed)


def apply_lr(trainer: Any, lr: float) -> str:
    """Apply ``lr`` to the Trainer's schedule callback or first optimizer; return what was changed."""
    from lr_plugins.callback import ScheduleCallback

    if not math.isfinite(lr) or lr <= 0:
        warnings.warn(f"LRFinder: no usable suggestion (lr={lr!r}); nothing was applied.", UserWarning, stacklevel=3)
        return "nothing"
    schedules = [c for c in trainer.callbacks if isinstance(c, ScheduleCallback)]
    if schedules:
        return "; ".join(c for c in (apply_to_schedule(s, lr) for s in schedules) if c != "nothing") or "nothing"
    optimizer = trainer.optimizers[0]
    schedulers = [c.scheduler for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is optimizer]
    peaks = _peaks(optimizer, schedulers)
    targets = [lr * p / peaks[0] if peaks[0] > 0 else lr for p in peaks]
    factors = [t / p if p > 0 else 1.0 for t, p in zip(targets, peaks)]
    for g, f, p, t in zip(optimizer.param_groups, factors, peaks, targets):
        for key in _GROUP_KEYS:
            if key in g and isinstance(g[key], (int, float)):
                g[key] = g[key] * f if p > 0 else t
    for s in schedulers:
        for attr in ("base_lrs", "max_lrs"):
            _scale_list(s, attr, factors)
        _scale_last_lr(s, factors)
    return f"{type(optimizer).__name__} lr={lr:.3g}" + (f" (+ {type(schedulers[0]).__name__})" if schedulers else "")
