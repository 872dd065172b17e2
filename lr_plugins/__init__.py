"""lr-plugins: LR schedules, snapshot ensembling and an LR finder for PyTorch Lightning.

The public names are imported lazily, so ``import lr_plugins`` stays cheap (no torch or
Lightning until a name is used). They are every name of ``lr_plugins.callback.__all__`` (the
schedules, ``ScheduleCallback`` and its helpers: a new schedule needs no line here) and the
few of :data:`_ELSEWHERE`. Type checkers and IDEs see the same names through the imports under
``TYPE_CHECKING`` below (the package ships ``py.typed``), so ``SGDR(cycle_lenght=2)`` is
reported before anything runs.

Example:
    >>> from lr_plugins import SGDR
    >>> SGDR(max_lr=0.1, cycle_length=2).lr_at(0)
    0.1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy __getattr__ below returns, for type checkers (a test compares the two)
    from lr_plugins.callback import *  # noqa: F403
    from lr_plugins.distributed import CleanDistributedExit as CleanDistributedExit
    from lr_plugins.finder import LRFinder as LRFinder
    from lr_plugins.finder import find_lr as find_lr
    from lr_plugins.snapshot import SnapshotEnsemble as SnapshotEnsemble

__version__ = "0.1.0"

#: The public names that are not in ``lr_plugins.callback.__all__``, by module.
_ELSEWHERE = {
    "SnapshotEnsemble": "lr_plugins.snapshot",
    "LRFinder": "lr_plugins.finder",
    "find_lr": "lr_plugins.finder",
    "CleanDistributedExit": "lr_plugins.distributed",
}


def _public() -> list[str]:
    """``lr_plugins.__all__``: the callback module's public names, the others and ``__version__``."""
    callback = importlib.import_module("lr_plugins.callback")
    return [*callback.__all__, *_ELSEWHERE, "__version__"]


if not TYPE_CHECKING:  # hidden from type checkers, so that an unknown name is reported, not Any

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            value: Any = _public()
        elif name in _ELSEWHERE:
            value = getattr(importlib.import_module(_ELSEWHERE[name]), name)
        elif not name.startswith("_") and name in _public():
            value = getattr(importlib.import_module("lr_plugins.callback"), name)
        else:
            raise AttributeError(f"module 'lr_plugins' has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_public()})
