"""Schedule-free optimizers in a Lightning fit: find them, swap plain ones for them, switch their mode.

A ``schedulefree`` optimizer keeps two points: ``train()`` puts the weights where gradients are
taken (``y``), ``eval()`` at the average that is evaluated and kept (``x``). Lightning calls
neither (Lightning #20441), so :class:`lr_plugins.ScheduleFree` calls them through this module.

Example:
    >>> import torch
    >>> is_schedule_free(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    False
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["is_schedule_free", "schedule_free_twin", "set_mode", "eval_weights", "INSTALL"]

INSTALL = "schedulefree is not installed (it is optional: pip install 'lr-plugins[schedulefree]')"


def is_schedule_free(optimizer: Any) -> bool:
    """Whether ``optimizer`` has ``train()``/``eval()`` modes (``schedulefree``'s optimizers and wrapper)."""
    groups = getattr(optimizer, "param_groups", None) or [{}]
    return callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None)) and (
        "train_mode" in groups[0]
    )


def schedule_free_twin(optimizer: torch.optim.Optimizer, owner: str) -> torch.optim.Optimizer:
    """A schedule-free optimizer with the same parameters, LRs and weight decay per group.

    ``SGD`` becomes ``SGDScheduleFree`` (its momentum when in (0, 1), else schedulefree's 0.9),
    ``Adam`` and ``AdamW`` become ``AdamWScheduleFree`` (same betas and eps; weight decay
    decoupled, as in AdamW). Any other type is refused with one line.
    """
    try:
        import schedulefree
    except ImportError as err:
        raise ModuleNotFoundError(f"{INSTALL}; {owner}(replace_optimizer=True) needs it.") from err
    name = type(optimizer).__name__
    groups = []
    for g in optimizer.param_groups:
        group = {"params": g["params"], "lr": float(g["lr"]), "weight_decay": float(g.get("weight_decay", 0.0))}
        if isinstance(optimizer, torch.optim.SGD):
            m = float(g.get("momentum", 0.0))
            group["momentum"] = m if 0 < m < 1 else 0.9
        elif isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
            group["betas"], group["eps"] = tuple(g["betas"]), float(g["eps"])
        groups.append(group)
    if isinstance(optimizer, torch.optim.SGD):
        return schedulefree.SGDScheduleFree(groups, lr=groups[0]["lr"])
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return schedulefree.AdamWScheduleFree(groups, lr=groups[0]["lr"])
    raise ValueError(
        f"replace_optimizer=True is not allowed with {name}: {owner} swaps SGD, Adam and AdamW for their "
        "schedule-free versions; return a schedulefree optimizer from configure_optimizers instead."
    )


def set_mode(optimizers: list[Any], mode: str) -> bool:
    """Call ``train()`` or ``eval()`` on every schedule-free optimizer; return whether any changed mode."""
    changed = False
    for opt in optimizers:
        if is_schedule_free(opt) and opt.param_groups[0]["train_mode"] != (mode == "train"):
            getattr(opt, mode)()
            changed = True
    return changed


@contextmanager
def eval_weights(optimizers: list[Any]) -> Iterator[bool]:
    """Inside: the optimizers in eval mode (yields whether any was in train mode). After: as before, bit for bit.

    ``eval()`` then ``train()`` would move the weights back only up to float rounding; the weights
    of the optimizers that were in train mode are copied before and restored after instead.
    """
    live = [opt for opt in optimizers if is_schedule_free(opt) and opt.param_groups[0]["train_mode"]]
    saved = [[p.detach().clone() for g in opt.param_groups for p in g["params"]] for opt in live]
    set_mode(live, "eval")
    try:
        yield bool(live)
    finally:
        with torch.no_grad():
            for opt, copies in zip(live, saved):
                for p, copy in zip((p for g in opt.param_groups for p in g["params"]), copies):
                    p.copy_(copy)
                for g in opt.param_groups:
                    g["train_mode"] = True
