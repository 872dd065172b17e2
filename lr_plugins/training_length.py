"""How long a fit is, in optimizer steps: the one place epochs become steps.

With ``B`` train batches per epoch and gradient accumulation ``a``:

    steps_per_epoch = ceil(B / a)                                       (inf: unsized loader)
    total_steps     = done + left_in_epoch + (max_epochs - epoch - 1) * steps_per_epoch
                      capped at max_steps (when set)
    left_in_epoch   = ceil(B / a) - floor(b / a)                        (b: batches of this epoch run)

``done`` is the optimizer steps already taken (``trainer.global_step``). For a fresh fit this
is Lightning's ``trainer.estimated_stepping_batches``; after a resume with another accumulation
(or another number of batches) it counts the steps already run as they were, which Lightning's
estimate does not (it prices every epoch at today's steps per epoch).

Example:
    >>> import lightning.pytorch as L
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> trainer = L.Trainer(max_epochs=3, accumulate_grad_batches=2, logger=False)  # doctest: +SKIP
    >>> # 10 batches per epoch -> 5 optimizer steps per epoch, 15 in all
    >>> steps_per_epoch(trainer), total_steps(trainer)  # doctest: +SKIP
    (5.0, 15.0)
    >>> remaining_steps(batches=10, accumulate=2, epochs_left=3, batches_done=4)
    13
"""

from __future__ import annotations

import math

import lightning.pytorch as pl

__all__ = ["steps_per_epoch", "total_steps", "remaining_steps", "batches_done_in_epoch", "batches_run_again"]


def steps_per_epoch(trainer: pl.Trainer) -> float:
    """Optimizer steps in one training epoch: ``ceil(batches / accumulate_grad_batches)``.

    ``inf`` for an unsized train dataloader. Sets up the train dataloader when the Trainer has
    not yet.
    """
    if trainer.train_dataloader is None:
        trainer.fit_loop.setup_data()
    batches = trainer.num_training_batches
    if not math.isfinite(batches):
        return math.inf
    return float(math.ceil(batches / trainer.accumulate_grad_batches))


def remaining_steps(batches: float, accumulate: int, epochs_left: int, batches_done: int = 0) -> float:
    """Optimizer steps still to run in ``epochs_left`` epochs (the current one included).

    The current epoch has run ``batches_done`` of its ``batches`` batches; Lightning steps the
    optimizer after every ``accumulate``-th batch of an epoch and after its last one.

    Example:
        >>> remaining_steps(batches=8, accumulate=1, epochs_left=2)
        16
    """
    if epochs_left <= 0:
        return 0
    if not math.isfinite(batches):
        return math.inf
    per_epoch = math.ceil(batches / accumulate)
    return max(per_epoch - batches_done // accumulate, 0) + (epochs_left - 1) * per_epoch


def batches_done_in_epoch(trainer: pl.Trainer) -> int:
    """Batches of the current epoch already run when a fit (re)starts: > 0 only for a mid-epoch resume."""
    loop = trainer.fit_loop
    epochs = loop.epoch_progress.current
    if epochs.ready > epochs.completed:  # the checkpoint was written inside an epoch
        return int(loop.epoch_loop.batch_progress.current.ready)
    return 0


def batches_run_again(trainer: pl.Trainer) -> int:
    """Batches of the current epoch that a resumed fit runs a second time (0 almost always).

    Lightning (2.x) restarts the epoch from its first batch when the checkpoint was written inside
    an epoch of a fit that was itself resumed from a checkpoint written after an epoch's last batch:
    that fit never marked the epoch as started. ``total_steps`` counts those steps (they run);
    this names them for the refusal line.
    """
    loop = trainer.fit_loop
    epochs = loop.epoch_progress.current
    batches = int(loop.epoch_loop.batch_progress.current.ready)
    if trainer.global_step > 0 and not loop.restarting and epochs.ready == epochs.completed and batches > 0:
        return batches
    return 0


def total_steps(trainer: pl.Trainer, batches_done: int | None = None, steps_done: int | None = None) -> float:
    """Optimizer steps the whole fit takes, the steps already run included; ``inf`` for infinite training.

    Args:
        trainer: The Trainer at train start or at the start of an epoch (its train dataloader set up).
        batches_done: Batches of the current epoch already run; ``None`` reads it from the fit
            loop (right for train start, a resume included).
        steps_done: Optimizer steps already run; ``None``: ``trainer.global_step`` (which counts
            the steps of every optimizer under manual optimization).
    """
    done = trainer.global_step if steps_done is None else steps_done
    max_steps = trainer.max_steps
    cap = math.inf if max_steps is None or max_steps < 0 else float(max_steps)
    max_epochs = trainer.max_epochs
    if max_epochs is None or max_epochs < 0:
        return cap
    if trainer.train_dataloader is None:
        trainer.fit_loop.setup_data()
    if batches_done is None:
        batches_done = batches_done_in_epoch(trainer)
    epochs_left = max(max_epochs, 1) - trainer.current_epoch
    left = remaining_steps(trainer.num_training_batches, trainer.accumulate_grad_batches, epochs_left, batches_done)
    return min(float(done + left), cap)
