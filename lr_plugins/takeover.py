"""Taking over from the LR schedulers a module's ``configure_optimizers`` returns.

A schedule callback with ``replace_schedulers=True`` removes the Trainer's scheduler configs at
fit start, as Lightning's ``StochasticWeightAveraging`` replaces them: the module's schedulers are
never stepped (nor saved in checkpoints), and the callback sets the LR of every step. Building a
torch scheduler may already have changed the LR (``LambdaLR`` applies its factor, ``OneCycleLR``
starts at ``max_lr / div_factor``), so each param group first gets back the LR it was configured
with, which is the peak a ``max_lr=None`` schedule then uses:

    configured LR = the scheduler's max_lr        for OneCycleLR and CyclicLR (the peak it was given)
                  = group["initial_lr"]           for every other torch scheduler (the LR before it)
                  = group["lr"]                   for ReduceLROnPlateau (it changes nothing up front)

Momentum is left as the scheduler left it (OneCycleLR and CyclicLR start it at their
``max_momentum``) unless the schedule cycles momentum itself.

Example:
    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
    >>> sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10)
    >>> round(opt.param_groups[0]["lr"], 6), configured_lrs(sched)  # it starts at 0.5 / 25
    (0.02, [0.5])
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

__all__ = ["configured_lrs", "take_over_schedulers"]


def configured_lrs(scheduler: Any) -> list[float]:
    """The LR each param group of ``scheduler``'s optimizer was configured with (see the module doc)."""
    from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

    groups = scheduler.optimizer.param_groups
    if isinstance(scheduler, OneCycleLR):
        return [float(g["max_lr"]) for g in groups]
    if isinstance(scheduler, CyclicLR):
        return [float(x) for x in scheduler.max_lrs]
    return [float(g.get("initial_lr", g["lr"])) for g in groups]


def take_over_schedulers(trainer: pl.Trainer, owner: str, allowed: bool) -> list[str]:
    """Remove the Trainer's LR scheduler configs (restoring each group's configured LR), or refuse.

    Args:
        trainer: The Trainer at fit start (its optimizers and schedulers are set up).
        owner: The schedule callback's class name, for the messages.
        allowed: The callback's ``replace_schedulers``; ``False`` refuses a module scheduler.

    Returns:
        The class names of the schedulers taken over (empty when the module returned none).

    Raises:
        ValueError: The module returned a scheduler and ``allowed`` is False.
    """
    configs = trainer.lr_scheduler_configs
    if not configs:
        return []
    names = [type(c.scheduler).__name__ for c in configs]
    listed = ", ".join(names)
    if not allowed:
        raise ValueError(
            f"replace_schedulers=False is not allowed with a module scheduler: {owner} sets the LR, but "
            f"configure_optimizers also returns an LR scheduler ({listed}). Pass {owner}(..., replace_schedulers=True) "
            "(Hydra: ++schedule.replace_schedulers=true) to let the schedule take over from it, or return only the "
            "optimizer from configure_optimizers."
        )
    for config in configs:
        for group, lr in zip(config.scheduler.optimizer.param_groups, configured_lrs(config.scheduler)):
            group["lr"] = lr
    configs.clear()
    rank_zero_warn(
        f"{owner} replaces the LR scheduler {listed} returned by configure_optimizers (replace_schedulers=True): "
        f"it is not stepped in this fit; {owner} sets the LR of every step.",
        category=UserWarning,
    )
    return names
