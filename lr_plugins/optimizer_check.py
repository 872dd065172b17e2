"""Resume with the optimizers the checkpoint was trained with, or be told before any step.

Lightning restores each optimizer with ``optimizer.load_state_dict``; another optimizer class
(SGD -> Adam), another number of optimizers or of param groups, or groups holding other tensors
then fail inside torch, or worse, load hyperparameters of the wrong class. :func:`optimizer_change`
compares a checkpoint with this run's optimizers and names the first difference;
:func:`check_optimizers` refuses it with one line. The schedule callbacks call it at fit start of
a resume (the class names come from their checkpoint state); an app can call it on its own.

Without recorded class names, a class change is seen by the hyperparameters: a checkpoint's
param group lacks a numeric setting this run's optimizer has (``betas`` for Adam after SGD;
flags that newer torch versions add, such as ``fused``, are not compared).

Example:
    >>> import torch
    >>> p = [torch.zeros(2)]
    >>> ckpt = {"optimizer_states": [torch.optim.SGD(p, lr=0.1).state_dict()]}
    >>> optimizer_change(ckpt, [torch.optim.Adam(p, lr=0.1)], names=["SGD"])
    "the checkpoint's optimizer 0 is SGD, this run's is Adam"
    >>> optimizer_change(ckpt, [torch.optim.SGD(p, lr=0.3)]) is None
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["optimizer_change", "check_optimizers"]


def _is_setting(value: Any) -> bool:
    """A numeric hyperparameter (``momentum``, ``betas``, ``eps``), not a flag torch versions add (``fused``)."""
    return isinstance(value, (int, float, tuple)) and not isinstance(value, bool)


def optimizer_change(checkpoint: dict[str, Any], optimizers: Sequence[Any], names: Sequence[str] | None = None) -> str | None:
    """The first difference between the checkpoint's optimizers and ``optimizers`` (a phrase), or None.

    Args:
        checkpoint: A Lightning checkpoint (its ``optimizer_states``; a checkpoint without them,
            e.g. weights only, is not compared).
        optimizers: This run's optimizers, in ``configure_optimizers`` order.
        names: The checkpoint's optimizer class names, when recorded (a schedule's state has them).
    """
    states = checkpoint.get("optimizer_states")
    if states is None and names is None:
        return None
    count = len(states) if states is not None else len(names or ())
    if count != len(optimizers):
        return f"the checkpoint has {count} optimizer(s), this run has {len(optimizers)}"
    for j, opt in enumerate(optimizers):
        mine = type(opt).__name__
        if names is not None and j < len(names) and names[j] != mine:
            return f"the checkpoint's optimizer {j} is {names[j]}, this run's is {mine}"
        if states is None:
            continue
        groups = states[j].get("param_groups", []) if isinstance(states[j], dict) else []
        if len(groups) != len(opt.param_groups):
            return (f"the checkpoint's optimizer {j} has {len(groups)} param group(s), this run's {mine} has "
                    f"{len(opt.param_groups)}")
        for i, (saved, now) in enumerate(zip(groups, opt.param_groups)):
            missing = sorted(k for k, v in opt.defaults.items() if k not in saved and _is_setting(v))
            if missing:
                return (f"the checkpoint's optimizer {j} has no {', '.join(missing)} setting, which this run's {mine} "
                        "has (another optimizer class)")
            if len(saved.get("params", ())) != len(now["params"]):
                return (f"param group {i} of optimizer {j} holds {len(saved.get('params', ()))} tensor(s) in the "
                        f"checkpoint, {len(now['params'])} in this run (another model or grouping)")
    return None


def check_optimizers(checkpoint: dict[str, Any], optimizers: Sequence[Any], names: Sequence[str] | None = None) -> None:
    """Raise ``ValueError`` (one line) when :func:`optimizer_change` finds a difference."""
    change = optimizer_change(checkpoint, optimizers, names)
    if change is not None:
        raise ValueError(
            f"Cannot resume from this checkpoint: {change}. Resume with the same optimizer(s) and param groups, "
            "or start a new run (without ckpt_path)."
        )
