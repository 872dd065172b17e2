"""Reduce the LR when a monitored metric stops improving: torch's ReduceLROnPlateau rule after a warmup."""

from __future__ import annotations

import math
from typing import Any

from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on

from lr_plugins._validation import check_choice, check_int, check_real
from lr_plugins.schedules.base import CommonArgs, Curve

__all__ = ["PlateauCurve", "PLATEAU_MODES", "THRESHOLD_MODES", "PLATEAU_EPS"]

PLATEAU_MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")
#: A reduction smaller than this (in LR) is skipped, as torch's ``ReduceLROnPlateau(eps=1e-8)`` does.
PLATEAU_EPS = 1e-8


class PlateauCurve(Curve, name="Plateau"):
    r"""Linear warmup, then the peak divided by ``1 / factor`` each time the metric reaches a plateau.

    After ``k`` reductions the LR is :math:`\max(\eta_{min}, \eta_{max} \cdot factor^k)`. The
    rule is ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s, fed one value of the metric per
    :meth:`observe`: a value is better than the best so far when it is below
    ``best * (1 - threshold)`` (``mode="min"``, ``threshold_mode="rel"``), ``best - threshold``
    (``"abs"``), or above ``best * (1 + threshold)`` / ``best + threshold`` (``mode="max"``); after
    more than ``patience`` values in a row that are not better, the LR is reduced and the next
    ``cooldown`` values are ignored. The callback feeds the value of ``monitor`` at the end of
    each validation that ends after the warmup (at the end of each training epoch when the fit
    has no validation); ``preview`` and ``lr_at`` show the curve with the reductions made so far.

    Unlike torch, every param group keeps its ratio to group 0 (``min_lr`` is group 0's floor).

    Args:
        monitor: The logged metric to watch (``self.log(monitor, ...)``).
        mode: ``"min"`` (lower is better, a loss) or ``"max"`` (an accuracy).
        factor: What a reduction multiplies the LR by (0 < factor < 1).
        patience: Values that are not better allowed before a reduction (an int >= 0).
        threshold: How much better a value must be to count (>= 0).
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: Values to ignore after a reduction (an int >= 0).
        **common: ``max_lr``, ``min_lr``, ``warmup``, ``warmup_start_lr``, ``unit`` (see ``Curve``).

    Example:
        >>> from lr_plugins import Plateau
        >>> s = Plateau(max_lr=1.0, factor=0.5, patience=1, unit="step")
        >>> [s.observe(v) for v in (3.0, 2.0, 2.0, 2.0, 1.0)]
        [False, False, False, True, False]
        >>> s.lr_at(100)
        0.5
    """

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
        **common: Unpack[CommonArgs],
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor={monitor!r} is not allowed: monitor must be the name of a logged metric.")
        self.monitor = monitor
        self.mode = check_choice("mode", mode, PLATEAU_MODES)
        self.factor = check_real("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.patience = check_int("patience", patience, low=0)
        self.threshold = check_real("threshold", threshold, low=0.0)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        self.cooldown = check_int("cooldown", cooldown, low=0)
        super().__init__(**common)
        self.reset()

    # ------------------------------------------------------------------ the rule
    def reset(self) -> None:
        """Forget every value seen: no reductions, no best value."""
        self.reductions = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad = 0
        self.cooldown_counter = 0
        self.observed = 0

    def is_better(self, value: float, best: float) -> bool:
        """Whether ``value`` improves on ``best`` by more than the threshold (torch's ``_is_better``)."""
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def observe(self, value: float, peak: float | None = None) -> bool:
        """Feed one value of the metric; return whether it reduced the LR.

        ``peak`` is the LR the reductions apply to (default ``max_lr``, or 1.0 when None): a
        reduction that would change it by no more than ``PLATEAU_EPS`` is skipped, as in torch.
        """
        value = float(value)
        self.observed += 1
        if self.is_better(value, self.best):
            self.best, self.num_bad = value, 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0
        if self.num_bad <= self.patience:
            return False
        self.cooldown_counter, self.num_bad = self.cooldown, 0
        top = peak if peak is not None else 1.0 if self.max_lr is None else self.max_lr
        old, new = self.reduced(top, self.reductions), self.reduced(top, self.reductions + 1)
        if old - new > PLATEAU_EPS:
            self.reductions += 1
            return True
        return False

    def reduced(self, peak: float, k: int) -> float:
        """The LR after ``k`` reductions of ``peak``: ``max(min_lr, peak * factor**k)``."""
        return max(self.min_lr, peak * self.factor**k)

    def rule_state(self) -> dict[str, Any]:
        """What a checkpoint keeps so that a resumed fit continues the rule exactly."""
        return {"reductions": self.reductions, "best": self.best, "num_bad": self.num_bad,
                "cooldown_counter": self.cooldown_counter, "observed": self.observed}

    def load_rule_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rule_state` (checked: a bad state is refused, nothing is changed)."""
        keys = set(self.rule_state())
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"Plateau state={state!r} is not allowed: it must be a dict with the keys {sorted(keys)}.")
        counts = {k: check_int(k, state[k], low=0) for k in keys - {"best"}}
        best = state["best"]
        if isinstance(best, bool) or not isinstance(best, (int, float)):
            raise TypeError(f"Plateau state best={best!r} is not allowed: it must be a number (inf before any value).")
        self.best = float(best)
        for k, v in counts.items():
            setattr(self, k, v)

    def body(self, t: float, total: float, peak: float, steps_per_unit: float) -> float:
        return self.reduced(peak, self.reductions)
