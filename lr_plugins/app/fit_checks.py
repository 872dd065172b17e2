"""Checks of the planned fit that Lightning makes late or not at all, as one line before any step.

:func:`check_batches`: a fit whose epochs have no training batch trains nothing (Lightning
skips it, counting "inf" batches, so a schedule then called the training "infinite"), e.g.
``trainer.limit_train_batches=0``.

Example:
    >>> check_batches({"limit_train_batches": 5}, 5.0)
    >>> try:
    ...     check_batches({"limit_train_batches": 0}, 0.0)
    ... except Exception as e:
    ...     print(str(e)[:57])
    trainer.limit_train_batches=0 is not allowed: it leaves 0
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_batches"]


def check_batches(trainer_kwargs: dict[str, Any], steps_per_epoch: float) -> None:
    """Raise :class:`~lr_plugins.app.build.ConfigError` when an epoch has no optimizer step."""
    from lr_plugins.app.build import ConfigError

    limit = trainer_kwargs.get("limit_train_batches")
    if limit is not None and not isinstance(limit, bool) and limit == 0:  # Lightning then counts inf batches
        raise ConfigError(f"trainer.limit_train_batches={limit!r} is not allowed: it leaves 0 training batches per "
                          "epoch, so nothing would be trained; give a number of batches >= 1 or a fraction in (0.0, 1.0].")
    if steps_per_epoch != 0:
        return
    raise ConfigError("data: the train dataloader has no batches, so nothing would be trained (trainer.limit_train_batches="
                      f"{limit!r}); give data with at least one batch.")
