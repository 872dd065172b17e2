"""lr-plugins: LR schedules, snapshot ensembling and an LR finder for PyTorch Lightning.

The public names are imported lazily, so ``import lr_plugins`` stays cheap (no torch or
Lightning until a name is used). Type checkers and IDEs see them through the explicit imports
under ``TYPE_CHECKING`` below (the package ships ``py.typed``), so ``SGDR(cycle_lenght=2)`` is
reported before anything runs.

Example:
    >>> from lr_plugins import SGDR
    >>> SGDR(max_lr=0.1, cycle_length=2).lr_at(0)
    0.1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy __getattr__ below returns, spelled out for type checkers
    from lr_plugins.callback import (
        SGDR,
        Constant,
        CyclicLR,
        ExponentialDecay,
        InverseTimeDecay,
        OneCycle,
        ScheduleCallback,
        StepDecay,
        WarmupCosine,
    )
    from lr_plugins.distributed import CleanDistributedExit
    from lr_plugins.finder import LRFinder, find_lr
    from lr_plugins.snapshot import SnapshotEnsemble

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

__all__ = [
    "WarmupCosine",
    "SGDR",
    "CyclicLR",
    "OneCycle",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "Constant",
    "ScheduleCallback",
    "SnapshotEnsemble",
    "LRFinder",
    "find_lr",
    "CleanDistributedExit",
    "__version__",
]


if not TYPE_CHECKING:  # hidden from type checkers, so that an unknown name is reported, not Any

    def __getattr__(name: str) -> Any:
        if name in _WHERE:
            value = getattr(importlib.import_module(_WHERE[name]), name)
            globals()[name] = value
            return value
        raise AttributeError(f"module 'lr_plugins' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
