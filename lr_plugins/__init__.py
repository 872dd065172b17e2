"""lr-plugins: LR schedules, snapshot ensembling and an LR finder for PyTorch Lightning.

The public names are imported lazily, so ``import lr_plugins`` stays cheap (no torch or
Lightning until a name is used).

Example:
    >>> from lr_plugins import SGDR
    >>> SGDR(max_lr=0.1, cycle_length=2).lr_at(0)
    0.1
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "WarmupCosine": "lr_plugins.callback",
    "SGDR": "lr_plugins.callback",
    "CyclicLR": "lr_plugins.callback",
    "OneCycle": "lr_plugins.callback",
    "StepDecay": "lr_plugins.callback",
    "ExponentialDecay": "lr_plugins.callback",
    "InverseTimeDecay": "lr_plugins.callback",
    "Constant": "lr_plugins.callback",
    "ScheduleCallback": "lr_plugins.callback",
    "SnapshotEnsemble": "lr_plugins.snapshot",
    "LRFinder": "lr_plugins.finder",
    "find_lr": "lr_plugins.finder",
    "CleanDistributedExit": "lr_plugins.distributed",
}

__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lr_plugins' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
