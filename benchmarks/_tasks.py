"""The lab's task builder: a task spec (a dict) -> ``(Classifier, datamodule)`` from the app's demo data and models.

A spec has ``data`` (``"mnist1d"`` / ``"digits"``), ``net`` (``"cnn"``, ``"mlp"``, ``"gru"``) with its
options under the same key, ``optimizer`` and optionally ``batch`` (64), ``momentum`` (0.9),
``weight_decay`` (5e-4 for SGD, else 0), ``label_smoothing`` (0) and ``epochs``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build"]


def _gru(hidden: int = 48, num_classes: int = 10):
    import torch
    from torch import nn

    class GRUNet(nn.Module):
        """A one-layer GRU over a sequence ``(N, L)`` (one feature per step); the last hidden state feeds a linear head."""

        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(1, hidden, batch_first=True)
            self.head = nn.Linear(hidden, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, h = self.gru(x.unsqueeze(-1) if x.dim() == 2 else x)
            return self.head(h[-1])

    return GRUNet()


def build(spec: dict[str, Any], seed: int):
    """The task's ``(Classifier, datamodule)`` with ``torch.manual_seed(seed)`` set before the model is built.

    Example:
        >>> model, dm = build({"data": "mnist1d", "net": "gru", "optimizer": "adam"}, seed=0)  # doctest: +SKIP
    """
    import torch

    from lr_plugins.app.data import DigitsDataModule, MNIST1DDataModule
    from lr_plugins.app.models import CNN1D, MLP, Classifier

    torch.manual_seed(seed)
    batch = spec.get("batch", 64)
    if spec["data"] == "mnist1d":
        dm, features = MNIST1DDataModule(batch_size=batch, seed=seed), 40
    else:
        dm, features = DigitsDataModule(batch_size=batch, seed=seed), 64
    if spec["net"] == "cnn":
        net = CNN1D(**{"channels": 16, "blocks": 2, **spec.get("cnn", {})})
    elif spec["net"] == "gru":
        net = _gru(**spec.get("gru", {}))
    else:
        net = MLP(in_features=features, **{"hidden": 256, **spec.get("mlp", {})})
    sgd = spec["optimizer"] == "sgd"
    model = Classifier(net, optimizer=spec["optimizer"], lr=0.1 if sgd else 1e-3, momentum=spec.get("momentum", 0.9),
                       weight_decay=spec.get("weight_decay", 5e-4 if sgd else 0.0),
                       label_smoothing=spec.get("label_smoothing", 0.0))
    return model, dm
