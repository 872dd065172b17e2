"""The schedule's resume state in a checkpoint, and its checks.

The state lives where Lightning keeps callback states, ``checkpoint["callbacks"]["lr_plugins.schedule"]``
(so Lightning names it when a resume lacks the schedule callback); checkpoints of earlier
versions keep it at ``checkpoint["lr_plugins.schedule"]``, which is still read
(:func:`find_state`). It records what the LR curve depends on, so that a resumed fit can warn
when it runs a different curve, and re-plan (or refuse) when the length of training changed::

    {"config": {"class": "SGDR", "max_lr": 0.1, ...},   # the curve's constructor arguments
     "base_lrs": [[0.1, 0.01]],                          # per optimizer, per param group
     "steps_per_epoch": 8.0, "total_steps": 40.0,        # inf: unsized loader / infinite fit
     # optional (absent in older checkpoints):
     "optimizers": ["SGD"],                              # class names, checked on resume
     "warp": {"anchor": 16, "at": 16.0, "rate": 2.0,     # a re-planned fit (lr_plugins.length_change)
              "total": 40.0, "steps_per_epoch": 8.0},
     "driven_steps": 20}                                 # manual optimization: the first optimizer's steps

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

__all__ = ["STATE_KEY", "STATE_KEYS", "WARP_KEYS", "check_state", "find_state"]

#: Where a checkpoint keeps the schedule's state (one key for every schedule class).
STATE_KEY = "lr_plugins.schedule"
STATE_KEYS = ("config", "base_lrs", "steps_per_epoch", "total_steps")
#: The keys of the optional ``warp`` entry (see :class:`lr_plugins.length_change.Plan`).
WARP_KEYS = ("anchor", "at", "rate", "total", "steps_per_epoch")


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
    return _optional_problem(state)


def _optional_problem(state: dict[str, Any]) -> str | None:
    """What is wrong with the optional keys (``optimizers``, ``warp``, ``driven_steps``), or None."""
    names = state.get("optimizers")
    if names is not None and not (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)):
        return f"'optimizers' must be a list of optimizer class names, not {names!r}"
    steps = state.get("driven_steps")
    if steps is not None and not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0):
        return f"'driven_steps' must be a whole number >= 0, not {steps!r}"
    warp = state.get("warp")
    if warp is None:
        return None
    if not isinstance(warp, dict) or any(k not in warp for k in WARP_KEYS):
        return f"'warp' must be a dict with keys {', '.join(WARP_KEYS)}, not {warp!r}"
    bad = [k for k in WARP_KEYS if not (_is_number(warp[k]) and warp[k] >= 0)]
    bad += [k for k in ("anchor", "at", "rate", "steps_per_epoch") if k not in bad and not math.isfinite(warp[k])]
    if bad or warp["steps_per_epoch"] <= 0:
        key = bad[0] if bad else "steps_per_epoch"
        return f"'warp' {key!r} must be a finite number >= 0 ('total' may be inf, 'steps_per_epoch' > 0), not {warp[key]!r}"
    return None


def find_state(checkpoint: dict[str, Any]) -> tuple[str, Any] | None:
    """Where ``checkpoint`` keeps the schedule state and the state; None when it has none.

    Example:
        >>> find_state({"callbacks": {"lr_plugins.schedule": {"config": {}}}})
        ("checkpoint['callbacks']['lr_plugins.schedule']", {'config': {}})
        >>> find_state({"lr_plugins.schedule": 1})  # an earlier version's checkpoint
        ("checkpoint['lr_plugins.schedule']", 1)
    """
    if STATE_KEY in checkpoint:
        return f"checkpoint[{STATE_KEY!r}]", checkpoint[STATE_KEY]
    callbacks = checkpoint.get("callbacks")
    if isinstance(callbacks, dict) and STATE_KEY in callbacks:
        return f"checkpoint['callbacks'][{STATE_KEY!r}]", callbacks[STATE_KEY]
    return None


def check_state(state: Any, where: str = f"checkpoint[{STATE_KEY!r}]") -> dict[str, Any]:
    """Return ``state`` (a checkpoint's schedule state) after checking its shape and types.

    Args:
        state: The state.
        where: Where the checkpoint keeps it, for the message (see :func:`find_state`).

    Raises:
        ValueError: One line naming where the state is, the bad key and what is allowed.
    """
    problem = _problem(state)
    if problem is not None:
        raise ValueError(
            f"{where} is malformed: {problem}. Resume from a checkpoint an lr-plugins schedule "
            "wrote, or delete this key from the checkpoint to resume without the schedule check."
        )
    return state
