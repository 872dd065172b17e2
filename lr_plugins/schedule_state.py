"""The schedule's resume state in a checkpoint, ``checkpoint["lr_plugins.schedule"]``, and its checks.

The state records what the LR curve depends on, so that a resumed fit can warn when it runs a
different curve than the checkpoint was trained with::

    {"config": {"class": "SGDR", "max_lr": 0.1, ...},   # the curve's constructor arguments
     "base_lrs": [[0.1, 0.01]],                          # per optimizer, per param group
     "steps_per_epoch": 8.0, "total_steps": 40.0}        # inf: unsized loader / infinite fit

:func:`check_state` refuses anything else with one line that names the key and what is wrong,
before any training step.

Example:
    >>> check_state({"config": {"class": "SGDR"}, "base_lrs": [[0.1]], "steps_per_epoch": 8, "total_steps": 40})["total_steps"]
    40
    >>> check_state([1, 2])
    Traceback (most recent call last):
    ...
    ValueError: checkpoint['lr_plugins.schedule'] is malformed: it must be a dict with keys config, base_lrs, steps_per_epoch, total_steps, not a list. Resume from a checkpoint an lr-plugins schedule wrote, or delete this key from the checkpoint to resume without the schedule check.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["STATE_KEY", "STATE_KEYS", "check_state"]

#: Where a checkpoint keeps the schedule's state (one key for every schedule class).
STATE_KEY = "lr_plugins.schedule"
STATE_KEYS = ("config", "base_lrs", "steps_per_epoch", "total_steps")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def _problem(state: Any) -> str | None:
    """What is wrong with ``state`` (a phrase naming the key), or None when it is well formed."""
    if not isinstance(state, dict):
        return f"it must be a dict with keys {', '.join(STATE_KEYS)}, not a {type(state).__name__}"
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        return f"it lacks the key(s) {', '.join(missing)} (it must have {', '.join(STATE_KEYS)})"
    config, base, spe, total = (state[k] for k in STATE_KEYS)
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        return f"'config' must be a dict with a 'class' name, not {config!r}"
    if not (isinstance(base, (list, tuple)) and base and all(isinstance(g, (list, tuple)) and g for g in base)):
        return f"'base_lrs' must be a non-empty list of non-empty lists (per optimizer, per param group), not {base!r}"
    bad = [x for g in base for x in g if not (_is_number(x) and math.isfinite(x) and x > 0)]
    if bad:
        return f"'base_lrs' must hold finite LRs > 0, not {bad[0]!r}"
    if not (_is_number(spe) and spe > 0):
        return f"'steps_per_epoch' must be a number > 0 (inf for an unsized loader), not {spe!r}"
    if not (_is_number(total) and total >= 0):
        return f"'total_steps' must be a number >= 0 (inf for infinite training), not {total!r}"
    return None


def check_state(state: Any) -> dict[str, Any]:
    """Return ``state`` (a checkpoint's schedule state) after checking its shape and types.

    Raises:
        ValueError: One line naming ``checkpoint['lr_plugins.schedule']``, the bad key and what
            is allowed.
    """
    problem = _problem(state)
    if problem is not None:
        raise ValueError(
            f"checkpoint[{STATE_KEY!r}] is malformed: {problem}. Resume from a checkpoint an lr-plugins schedule "
            "wrote, or delete this key from the checkpoint to resume without the schedule check."
        )
    return state
