"""LR and momentum logging exactly as ``LearningRateMonitor(logging_interval="step", log_momentum=True)``.

Lightning's monitor, at the start of every training batch where the Trainer writes logs
(``log_every_n_steps``), logs each param group's ``lr`` and momentum (``betas[0]`` for Adam-like
optimizers, ``momentum`` otherwise, 0 when there is none) at step ``_batches_that_stepped``. The
schedule callbacks log the same values under the same tags at the same steps, so a run with
either one writes the same series:

* ``lr-SGD``; ``lr-SGD/pg1``, ``lr-SGD/pg2`` with several groups (or ``lr-SGD/<name>`` for a
  group with a ``name``); ``lr-SGD-1`` for a second optimizer of the same class;
* the momentum of a group: its LR tag plus ``-momentum`` (``lr-SGD-momentum``, ``lr-SGD/pg1-momentum``).

Example:
    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1, momentum=0.9)
    >>> log = LRLog([opt])
    >>> log.tags
    ['lr-SGD', 'lr-SGD-momentum']
    >>> log.values()
    {'lr-SGD': 0.1, 'lr-SGD-momentum': 0.9}
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

__all__ = ["LRLog", "lr_tags", "momentum_tags", "monitor_logs", "should_log"]


def lr_tags(optimizers: list[Any]) -> list[list[str]]:
    """LR tags per optimizer and param group, as Lightning's LearningRateMonitor names them.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "name": "head"}], lr=0.1)
        >>> lr_tags([opt, torch.optim.SGD([torch.zeros(1)], lr=0.1)])
        [['lr-SGD/pg1', 'lr-SGD/head'], ['lr-SGD-1']]
    """
    seen: dict[type, int] = {}
    tags = []
    for opt in optimizers:
        cls = type(opt)
        seen[cls] = seen.get(cls, 0) + 1
        name = f"lr-{cls.__name__}" + (f"-{seen[cls] - 1}" if seen[cls] > 1 else "")
        groups = opt.param_groups
        if len(groups) > 1:
            tags.append([f"{name}/{g.get('name', f'pg{i + 1}')}" for i, g in enumerate(groups)])
        else:
            tags.append([f"{name}/{groups[0]['name']}" if groups[0].get("name") else name])
    return tags


def momentum_tags(optimizers: list[Any]) -> list[list[str]]:
    """Momentum tags: the LR tag plus ``-momentum``, as LearningRateMonitor(log_momentum=True) names them.

    Example:
        >>> import torch
        >>> momentum_tags([torch.optim.Adam([torch.zeros(1)])])
        [['lr-Adam-momentum']]
    """
    return [[f"{tag}-momentum" for tag in tags] for tags in lr_tags(optimizers)]


def _monitor_clock(trainer: pl.Trainer) -> tuple[bool, int]:
    """``(whether the Trainer writes logs at the coming batch, the step those logs carry)``.

    The one use of Lightning internals in this module (checked against Lightning 2.6; listed in
    tests/test_private_api.py): ``LearningRateMonitor.on_train_batch_start`` itself reads
    ``trainer._logger_connector.should_update_logs`` and logs at
    ``trainer.fit_loop.epoch_loop._batches_that_stepped``, and Lightning has no public name for
    either (``trainer.global_step`` counts every optimizer's steps, not the batches that stepped).
    Reading the same two values is what keeps the schedule's series identical to the monitor's;
    tests/test_lr_monitor_parity.py compares them, so a Lightning release that moves either fails there.
    """
    return bool(trainer._logger_connector.should_update_logs), int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def should_log(trainer: pl.Trainer) -> bool:
    """Whether the Trainer writes logs at the coming batch (``log_every_n_steps``), as the monitor asks."""
    return _monitor_clock(trainer)[0]


def monitor_logs(trainer: pl.Trainer) -> tuple[bool, bool]:
    """``(lr, momentum)``: whether a LearningRateMonitor among the callbacks already logs LRs / momenta.

    Example:
        >>> from lightning.pytorch.callbacks import LearningRateMonitor
        >>> monitor_logs(pl.Trainer(callbacks=[LearningRateMonitor()], logger=False))
        (True, False)
    """
    from lightning.pytorch.callbacks import LearningRateMonitor

    monitors = [c for c in trainer.callbacks if isinstance(c, LearningRateMonitor)]  # type: ignore[attr-defined]
    return bool(monitors), any(m.log_momentum for m in monitors)


class LRLog:
    """The LR and momentum of every param group of ``optimizers`` under the monitor's tags.

    The tags are those of the param groups as they are at each call, as the monitor names them
    at each log: a group added during the fit (``BackboneFinetuning``) gets its own tag from then
    on, and an optimizer that had one group moves from ``lr-SGD`` to ``lr-SGD/pg1``, ``lr-SGD/pg2``.

    Args:
        optimizers: The Trainer's optimizers (their param groups are read at each call of ``values``).
        lr: Whether to include the LR tags.
        momentum: Whether to include the momentum tags.

    Raises:
        ValueError: Two param groups of one optimizer share a ``name`` (their tags would collide;
            LearningRateMonitor refuses them too), at construction or when such a group is added.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
        >>> log = LRLog([opt], momentum=False)
        >>> opt.add_param_group({"params": [torch.zeros(1)], "lr": 0.01})
        >>> log.values()
        {'lr-SGD/pg1': 0.1, 'lr-SGD/pg2': 0.01}
    """

    def __init__(self, optimizers: list[Any], lr: bool = True, momentum: bool = True) -> None:
        self._optimizers = list(optimizers)
        self._lr, self._momentum = lr, momentum
        self._seen: tuple[tuple[int, str | None], ...] | None = None
        self._cached: list[tuple[dict, str, str | None]] = []
        self._items()  # refuses clashing names before the fit

    def _items(self) -> list[tuple[dict, str, str | None]]:
        """(param group, tag, ``"betas"``/``"momentum"``/None for the LR) for the groups as they are now.

        Worked out again only when the groups changed (a group added, replaced or renamed): the
        hot path of a step that logs is one pass over the groups' identities."""
        seen = tuple((id(g), g.get("name")) for opt in self._optimizers for g in opt.param_groups)
        if seen != self._seen:
            self._cached, self._seen = self._tagged(), seen
        return self._cached

    def _tagged(self) -> list[tuple[dict, str, str | None]]:
        items: list[tuple[dict, str, str | None]] = []
        if not (self._lr or self._momentum):
            return items
        for opt, ltags in zip(self._optimizers, lr_tags(self._optimizers)):
            if len(set(ltags)) < len(ltags):
                raise ValueError(
                    f"param group names {[g.get('name') for g in opt.param_groups]!r} of {type(opt).__name__} are "
                    "not allowed for logging: names must be unique within an optimizer (or pass log_lr=False)."
                )
            key = "betas" if "betas" in opt.defaults else "momentum"
            for group, tag in zip(opt.param_groups, ltags):
                if self._lr:
                    items.append((group, tag, None))
                if self._momentum:
                    items.append((group, f"{tag}-momentum", key))
        return items

    @property
    def tags(self) -> list[str]:
        """The tags this log writes (for the param groups as they are now)."""
        return [tag for _, tag, _ in self._items()]

    def values(self) -> dict[str, float]:
        """The current value of every tag, read from the param groups."""
        out: dict[str, Any] = {}
        for group, tag, key in self._items():
            if key is None:
                out[tag] = group["lr"]
            elif key == "betas":
                out[tag] = group["betas"][0]
            else:
                out[tag] = group.get("momentum", 0)
        return out

    def write(self, trainer: pl.Trainer) -> None:
        """Log the current values at the monitor's step, to every logger and to ``callback_metrics``."""
        stats = self.values()
        if not stats:
            return
        import torch

        step = _monitor_clock(trainer)[1]
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)
        device = trainer.strategy.root_device
        trainer.callback_metrics.update({k: torch.tensor(v, device=device) for k, v in stats.items()})
