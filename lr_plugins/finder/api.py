"""``find_lr``: run an LR range test in a throw-away Trainer and return the result."""

from __future__ import annotations

from typing import Any

from lr_plugins.finder.callback import LRFinder
from lr_plugins.finder.result import LRFinderResult

__all__ = ["find_lr"]

_DEFAULTS: dict[str, Any] = dict(
    accelerator="cpu",
    devices=1,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
)


def find_lr(
    model: Any,
    train_dataloaders: Any = None,
    datamodule: Any = None,
    schedule: Any = None,
    trainer_kwargs: dict[str, Any] | None = None,
    **finder_kwargs: Any,
) -> LRFinderResult:
    """Run the LR range test on ``model`` and return its :class:`LRFinderResult`.

    It builds its own Trainer from ``trainer_kwargs`` (default: CPU, one device, no logger, no
    checkpoint, no progress bar; ``max_steps`` is forced to 0 so no training follows the test),
    adds ``LRFinder(**finder_kwargs)`` to its callbacks and calls ``fit``. The model comes back
    exactly as it was. For DDP use the :class:`LRFinder` callback in your own Trainer.

    ``schedule`` is the schedule callback the training after the test will use (or ``None``: a
    constant LR). ``suggestion="auto"`` (the default) resolves from it, over the training that
    ``trainer_kwargs``' ``max_epochs`` / ``max_steps`` plan (Lightning's 1000 epochs if neither is
    given); with ``apply=True`` (the default) the pick becomes its peak through
    ``schedule.set_peak(lr)``, so the same object can go straight into the training Trainer.

    Args:
        model: The LightningModule.
        train_dataloaders: Training dataloader(s), as for ``Trainer.fit``.
        datamodule: A LightningDataModule instead of ``train_dataloaders``.
        schedule: The schedule callback that follows the test, or ``None``.
        trainer_kwargs: Extra Trainer arguments (e.g. ``accumulate_grad_batches``, ``logger``, ``max_epochs``).
        **finder_kwargs: :class:`LRFinder` arguments (``min_lr``, ``max_lr``, ``num_steps``, ...).

    Example:
        >>> from lr_plugins import find_lr
        >>> result = find_lr(model, datamodule=dm, num_steps=100)  # doctest: +SKIP
        >>> print(result.override())  # doctest: +SKIP
        schedule.max_lr=0.28
    """
    import lightning.pytorch as L

    from lr_plugins.callback import ScheduleCallback
    from lr_plugins.finder.apply import apply_to_schedule

    if schedule is not None and not isinstance(schedule, ScheduleCallback):
        raise TypeError(
            f"schedule={schedule!r} is not allowed: it must be a schedule callback (WarmupCosine, SGDR, ...) or None."
        )
    finder_kwargs.setdefault("verbose", False)
    finder = LRFinder(**finder_kwargs)
    kwargs = {**_DEFAULTS, **(trainer_kwargs or {})}
    # The finder applies to no Trainer schedule here: the planned one is ``schedule`` (applied below).
    finder._planned = (schedule, kwargs.get("max_steps"), kwargs.get("max_epochs"))
    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), finder]
    kwargs["max_steps"] = 0
    trainer = L.Trainer(**kwargs)
    trainer.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    if finder.result is None:
        raise RuntimeError(
            "find_lr got no result: the test ran in other processes (a spawn strategy?). Use the LRFinder "
            "callback in your Trainer for DDP."
        )
    if schedule is not None and finder.apply:
        finder.result.diagnostics["applied"] = apply_to_schedule(schedule, finder.result.suggestion)
    return finder.result
