"""A training order that a resumed run repeats exactly: a shuffle of (seed, epoch) and a loader
that Lightning checkpoints.

* :class:`EpochShuffle` draws epoch ``e``'s permutation from a generator seeded with
  ``(seed, e)`` alone (``numpy.random.SeedSequence([seed, e])``), not from a generator that
  earlier epochs advanced: a run resumed at epoch ``k`` shuffles epoch ``k`` as the
  uninterrupted run did. Lightning's fit loop calls ``set_epoch`` on it before every epoch. It
  is a ``RandomSampler``, so under DDP (``use_distributed_sampler=True``, the default) Lightning
  replaces it with its ``DistributedSampler``, whose order is also a function of
  (``PL_GLOBAL_SEED``, epoch).
* :class:`ResumableLoader` is a ``DataLoader`` with ``state_dict`` / ``load_state_dict``, which
  Lightning saves into every training checkpoint (``loops.fit_loop.state_dict.combined_loader``)
  and restores on resume: the epoch of the current pass (its sampler's ``epoch``) and the number
  ``n`` of batches handed out in it. A pass over that same epoch after a restore skips its first
  ``n`` batches, so a mid-epoch resume (a SIGTERM checkpoint) trains exactly the batches the
  interrupted epoch had left; a pass over another epoch (an epoch-end checkpoint) starts at its
  beginning. The skip reads the same batches and drops them (cheap for in-memory data).
* :class:`Position` holds that state. A data module shares one with its loaders and saves it
  through its own ``state_dict`` too: Lightning restores a loader's state only when it sets the
  loader up after reading the checkpoint, and a schedule that counts steps at fit start (or
  ``trainer.estimated_stepping_batches``) sets it up before (Lightning issue #20550); the data
  module is always restored before the first batch, and so is the shared position.

Example:
    >>> data = list(range(10))
    >>> sampler = EpochShuffle(data, seed=0)
    >>> sampler.set_epoch(3)
    >>> order = list(sampler)
    >>> fresh = EpochShuffle(data, seed=0)
    >>> fresh.set_epoch(3)
    >>> list(fresh) == order  # epoch 3's order, whatever came before
    True
    >>> loader = ResumableLoader(data, batch_size=4, sampler=sampler)
    >>> first = next(iter(loader))
    >>> loader.state_dict()
    {'epoch': 3, 'batches': 1}
    >>> again = ResumableLoader(data, batch_size=4, sampler=fresh)
    >>> again.load_state_dict(loader.state_dict())
    >>> [len(b) for b in again]  # the 2 batches epoch 3 had left
    [4, 2]
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

__all__ = ["EpochShuffle", "Position", "ResumableLoader"]


class EpochShuffle(RandomSampler):
    """A permutation of ``range(len(data_source))`` that depends only on ``(seed, epoch)``.

    Args:
        data_source: the data set (only its length is used).
        seed: the shuffle seed; epoch ``e`` uses a generator seeded by ``SeedSequence([seed mod 2**64, e])``.
    """

    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for epoch ``epoch`` from now on (Lightning calls this before every epoch)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        state = np.random.SeedSequence([self.seed % 2**64, self.epoch]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state))
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class Position:
    """Where training is in an epoch: the epoch of the current pass and the batches handed out in it.

    Shared by a data module and every loader it hands out (Lightning's DDP copy of a loader
    included), so whichever of them is asked saves or restores the same position.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.batches = 0
        self._restored: dict[str, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next pass over epoch ``state["epoch"]`` skip its first ``state["batches"]`` batches."""
        self._restored = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}
        self.epoch, self.batches = self._restored["epoch"], self._restored["batches"]

    def start(self, epoch: int) -> int:
        """A pass over ``epoch`` starts: return the batches to skip (a restored position of that epoch, else 0)."""
        restored, self._restored = self._restored, None
        skip = restored["batches"] if restored is not None and restored["epoch"] == epoch else 0
        self.epoch, self.batches = epoch, skip
        return skip


class ResumableLoader(DataLoader):
    """A ``DataLoader`` whose position in an epoch is saved into Lightning's checkpoints and restored.

    It takes ``DataLoader``'s arguments and ``position`` (a :class:`Position`, shared with the data
    module; a new one if not given); Lightning re-creates it with the same arguments and a
    ``DistributedSampler`` under DDP. The epoch is read from ``sampler.epoch`` (``EpochShuffle``
    or ``DistributedSampler``; 0 for a sampler without one) when a pass starts.
    """

    def __init__(self, *args: Any, position: Position | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = position if position is not None else Position()

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "batches"}``: the current pass's epoch and how many of its batches were handed out."""
        return self.position.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next pass over epoch ``state["epoch"]`` skip its first ``state["batches"]`` batches."""
        self.position.load_state_dict(state)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._pass()

    def _pass(self) -> Iterator[Any]:
        # A generator: the sampler's epoch is read at the first batch, after Lightning's set_epoch.
        skip = self.position.start(int(getattr(self.sampler, "epoch", 0)))
        batches = super().__iter__()
        for _ in range(skip):
            next(batches, None)
        for batch in batches:
            self.position.batches += 1
            yield batch
