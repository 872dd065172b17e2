"""Demo models: a residual 1D CNN and an MLP, wrapped in a plain classification LightningModule.

The LightningModule knows nothing of lr-plugins: ``configure_optimizers`` returns a plain
optimizer and the schedule callbacks do the rest.
"""

from __future__ import annotations

import lightning.pytorch as L
import torch
import torchmetrics
from torch import nn

from lr_plugins._validation import check_choice, check_int, check_real

__all__ = ["CNN1D", "MLP", "Classifier"]


class _ResBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, padding=pad, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size, padding=pad, bias=False),
            nn.BatchNorm1d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class CNN1D(nn.Module):
    """Residual 1D CNN for sequences ``(N, L)`` or ``(N, C, L)``: stem, ``blocks`` residual
    blocks (halving the length after each but the first), global average pooling, linear head.

    Example:
        >>> CNN1D(num_classes=10)(torch.zeros(2, 40)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, channels: int = 32, blocks: int = 3, kernel_size: int = 5, in_channels: int = 1):
        super().__init__()
        check_int("num_classes", num_classes, low=2)
        check_int("channels", channels, low=1)
        check_int("blocks", blocks, low=1)
        check_int("kernel_size", kernel_size, low=1)
        layers: list[nn.Module] = [
            nn.Conv1d(in_channels, channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        ]
        for i in range(blocks):
            layers.append(_ResBlock(channels, kernel_size))
            if i < blocks - 1:
                layers.append(nn.MaxPool1d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.head(self.features(x).mean(-1))


class MLP(nn.Module):
    """Multi-layer perceptron on flattened inputs.

    Example:
        >>> MLP(in_features=64, num_classes=10)(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_features: int = 40, num_classes: int = 10, hidden: int = 256, depth: int = 2, dropout: float = 0.0):
        super().__init__()
        check_int("in_features", in_features, low=1)
        check_int("hidden", hidden, low=1)
        check_int("depth", depth, low=1)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Classifier(L.LightningModule):
    """Cross-entropy classifier around any ``nn.Module``; logs ``{train,val,test}/{loss,acc}``.

    Args:
        net: The network; its output is the class logits.
        num_classes: Number of classes (for the accuracy metric).
        optimizer: ``"sgd"`` (with ``momentum``, Nesterov) or ``"adam"`` / ``"adamw"``.
        lr: The optimizer's LR (the schedule's peak when its ``max_lr`` is None).
        momentum: SGD momentum.
        weight_decay: Weight decay.

    Example:
        >>> model = Classifier(MLP(in_features=40), optimizer="adam", lr=1e-3)
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int = 10,
        optimizer: str = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        check_choice("optimizer", optimizer, ("sgd", "adam", "adamw"))
        check_real("lr", lr, low=0.0, low_open=True)
        check_real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        check_real("weight_decay", weight_decay, low=0.0)
        check_real("label_smoothing", label_smoothing, low=0.0, high=1.0, high_open=True)
        self.train_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str, metric: torchmetrics.Metric) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing if stage == "train" else 0.0)
        metric(logits, y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=stage != "train", sync_dist=stage != "train")
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train", self.train_acc)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx):
        self._step(batch, "test", self.test_acc)

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(x).softmax(-1)

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0, weight_decay=hp.weight_decay)
        cls = torch.optim.Adam if hp.optimizer == "adam" else torch.optim.AdamW
        return cls(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
