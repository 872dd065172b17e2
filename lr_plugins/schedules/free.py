"""The LR of a schedule-free optimizer: a warmup, then the peak (the optimizer averages by itself)."""

from __future__ import annotations

from lr_plugins.schedules.decay import ConstantCurve

__all__ = ["ScheduleFreeCurve"]


class ScheduleFreeCurve(ConstantCurve, name="ScheduleFree"):
    r"""Schedule-free training (Defazio et al. 2024): a linear warmup, then :math:`\eta(t) = \eta_{max}`.

    A schedule-free optimizer (``schedulefree.SGDScheduleFree``, ``AdamWScheduleFree``, ...)
    replaces the decay by an average of its iterates: it needs no schedule beyond a warmup,
    but it must be switched to ``eval()`` (the averaged weights) for validation, testing,
    prediction and checkpoints, and back to ``train()`` before the next step. The callback
    (:class:`lr_plugins.ScheduleFree`) does both; its ``replace_optimizer=True`` swaps a plain
    SGD/Adam/AdamW for the schedule-free one at fit start. Give the warmup here, not as the
    optimizer's ``warmup_steps``.

    Example:
        >>> from lr_plugins.schedules import ScheduleFreeCurve
        >>> ScheduleFreeCurve(max_lr=0.5, warmup=2, unit="step").preview(4).tolist()
        [0.0, 0.25, 0.5, 0.5]
    """
