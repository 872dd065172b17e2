"""Demo data modules: MNIST-1D (generated locally, cached) and scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_plugins.app.data import DigitsDataModule, MNIST1DDataModule, load_mnist1d


def test_mnist1d_matches_the_paper_defaults():
    d = load_mnist1d()  # mnist1d.make_dataset defaults: 4000 train / 1000 test, length 40, 10 classes
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert set(np.unique(d["y"])) == set(range(10))


def test_mnist1d_splits_and_normalization():
    dm = MNIST1DDataModule(batch_size=100, val_fraction=0.1, seed=0)
    dm.setup()
    sizes = {k: len(getattr(dm, f"{k}_dataloader")().dataset) for k in ("train", "val", "test")}
    assert sizes == {"train": 3600, "val": 400, "test": 1000}
    x_train = dm.train_dataloader().dataset.tensors[0]
    x_val = dm.val_dataloader().dataset.tensors[0]
    both = torch.cat([x_train, x_val])  # normalized with the statistics of train + val (the fit split)
    assert float(both.mean()) == pytest.approx(0.0, abs=1e-5) and float(both.std()) == pytest.approx(1.0, abs=1e-4)
    assert dm.input_shape == (40,)


def test_digits_splits_are_disjoint_and_fixed():
    a, b = DigitsDataModule(seed=0), DigitsDataModule(seed=0)
    a.setup(), b.setup()
    assert len(a.test_dataloader().dataset) == 1797 // 4
    assert len(a.train_dataloader().dataset) + len(a.val_dataloader().dataset) == 1797 - 1797 // 4
    assert torch.equal(a.val_dataloader().dataset.tensors[0], b.val_dataloader().dataset.tensors[0])
    assert a.input_shape == (64,)


@pytest.mark.parametrize("kwargs, name", [({"batch_size": 0}, "batch_size"), ({"val_fraction": 1.0}, "val_fraction")])
def test_bad_arguments_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DigitsDataModule(**kwargs)
