"""What ``result.json`` says about the schedule at the end of a run: did training end before it?

A run can stop before the schedule's planned end (``max_time``, early stopping, a step count
that changed during the fit): a cosine stopped at its peak is not the cosine that was asked for.
:func:`schedule_report` reads what the schedule callback reports (``ended_early``) and, failing that, compares the optimizer steps
run with the steps it planned (``fit_total_steps``).

Example:
    >>> schedule_report([], None) is None
    True
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["schedule_report"]


def schedule_report(callbacks: list[Any], trainer: Any) -> dict[str, Any] | None:
    """``{"name", "planned_steps", "steps", "ended_early"}`` of the first schedule callback, else ``None``."""
    schedule = next((c for c in callbacks if hasattr(c, "check_total") and hasattr(c, "fit_total_steps")), None)
    if schedule is None or trainer is None:
        return None
    steps = int(trainer.global_step)
    try:
        planned = float(schedule.fit_total_steps)
    except Exception:  # noqa: BLE001 - never set (the fit ended before it started)
        planned = math.nan
    ended_early = getattr(schedule, "ended_early", None)  # what the callback reported at train end
    if ended_early is None and math.isfinite(planned):
        ended_early = steps < planned
    return {"name": type(schedule).__name__, "planned_steps": planned if math.isfinite(planned) else None,
            "steps": steps, "ended_early": None if ended_early is None else bool(ended_early)}
