"""Demo data that needs no network: MNIST-1D (generated locally) and scikit-learn's digits.

MNIST-1D (Greydanus, 2020) is made by ``mnist1d.data.make_dataset`` with its default arguments
(seed 42, 4000 train / 1000 test sequences of length 40, 10 classes) and cached as ``.npz``
under ``$LR_PLUGINS_CACHE`` (default ``~/.cache/lr_plugins``). A validation split is carved
from the training set with a fixed seed, so the test set stays untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from lr_plugins._validation import check_int, check_real
from lr_plugins.app.sampling import EpochShuffle, Position, ResumableLoader
from lr_plugins.files import atomic_open

__all__ = ["MNIST1DDataModule", "DigitsDataModule", "load_mnist1d", "cache_dir"]


def cache_dir() -> Path:
    """Where generated data sets are cached: ``$LR_PLUGINS_CACHE`` or ``~/.cache/lr_plugins``."""
    return Path(os.environ.get("LR_PLUGINS_CACHE", Path.home() / ".cache" / "lr_plugins"))


def load_mnist1d() -> dict[str, np.ndarray]:
    """MNIST-1D with the package's default arguments, generated once and cached (atomic write).

    Returns:
        ``{"x", "y", "x_test", "y_test"}``: float32 ``(N, 40)`` sequences and int64 labels.
    """
    path = cache_dir() / "mnist1d_default.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    data = {
        "x": raw["x"].astype(np.float32),
        "y": raw["y"].astype(np.int64),
        "x_test": raw["x_test"].astype(np.float32),
        "y_test": raw["y_test"].astype(np.int64),
    }
    with atomic_open(path) as f:
        np.savez(f, **data)
    return data


class _ArrayDataModule(L.LightningDataModule):
    """Train/val/test loaders over in-memory arrays; subclasses provide ``arrays()``."""

    def __init__(self, batch_size: int = 128, val_fraction: float = 0.1, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.val_fraction = check_real("val_fraction", val_fraction, low=0.0, high=1.0, high_open=True)
        self.seed = check_int("seed", seed)
        self.num_workers = check_int("num_workers", num_workers, low=0)
        self._sets: dict[str, TensorDataset] | None = None
        self._position = Position()  # where the train loader is in its epoch; saved in every checkpoint

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded tensors: a ``ddp_spawn`` worker loads its own in ``setup``.

        Sending them would go through torch's shared memory, which a sandbox may refuse
        ("unable to resize file"); the arrays come from the cache (MNIST-1D) or scikit-learn.
        """
        state = self.__dict__.copy()
        state["_sets"] = None
        return state

    def setup(self, stage: str | None = None) -> None:
        if self._sets is not None:
            return
        d = self.arrays()
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
        mean, std = x.mean(), x.std()
        norm = lambda a: (a - mean) / std  # noqa: E731 - statistics of the training split only
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        n_val = int(round(self.val_fraction * len(x)))
        val, train = perm[:n_val], perm[n_val:]
        self._sets = {
            "train": TensorDataset(norm(x[train]), y[train]),
            "val": TensorDataset(norm(x[val]), y[val]),
            "test": TensorDataset(norm(torch.from_numpy(d["x_test"])), torch.from_numpy(d["y_test"])),
        }

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.setup()
        return tuple(self._sets["train"].tensors[0].shape[1:])

    def _loader(self, split: str) -> DataLoader:
        self.setup()
        return DataLoader(self._sets[split], batch_size=self.batch_size, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        """Shuffled by ``(seed, epoch)``; resumable mid-epoch (see :mod:`lr_plugins.app.sampling`)."""
        self.setup()
        data = self._sets["train"]
        return ResumableLoader(data, batch_size=self.batch_size, sampler=EpochShuffle(data, seed=self.seed),
                               num_workers=self.num_workers, generator=torch.Generator().manual_seed(self.seed),
                               position=self._position)

    def state_dict(self) -> dict[str, Any]:
        """The train loader's position in its epoch (Lightning stores it in every checkpoint).

        Lightning also saves the loader's own ``state_dict``, but does not restore it when the train
        loader was set up before the checkpoint was read (a schedule that counts the steps at fit
        start, or ``trainer.estimated_stepping_batches``: Lightning issue #20550); this copy is
        restored through the data module, which Lightning always restores first.
        """
        return {"train_position": self._position.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "train_position" in state_dict:
            self._position.load_state_dict(state_dict["train_position"])

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")


class MNIST1DDataModule(_ArrayDataModule):
    """MNIST-1D: 3600 train / 400 val / 1000 test sequences of length 40, 10 classes.

    Example:
        >>> dm = MNIST1DDataModule(batch_size=64)  # doctest: +SKIP
        >>> dm.input_shape  # doctest: +SKIP
        (40,)
    """

    num_classes = 10

    def arrays(self) -> dict[str, np.ndarray]:
        return load_mnist1d()


class DigitsDataModule(_ArrayDataModule):
    """scikit-learn's bundled 8x8 digits (1797 images, flattened to 64 features), 10 classes.

    The test split is a fixed 25% of the data (seed 0); validation comes from the rest.
    """

    num_classes = 10

    def arrays(self) -> dict[str, np.ndarray]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.data / 16.0).astype(np.float32)
        y = digits.target.astype(np.int64)
        perm = np.random.default_rng(0).permutation(len(x))
        n_test = len(x) // 4
        return {"x": x[perm[n_test:]], "y": y[perm[n_test:]], "x_test": x[perm[:n_test]], "y_test": y[perm[:n_test]]}
