"""Snapshot files: one ``.pt`` per cycle end, written atomically, read with ``weights_only=True``.

A snapshot file holds only plain tensors and primitive metadata::

    {"format": "lr_plugins.snapshot/1",
     "state_dict": {name: tensor, ...},            # the module's state_dict, on CPU
     "meta": {"cycle": 2, "step": 299, "global_step": 300, "epoch": 14,
              "lr": 0.0, "val": {"val/acc": 0.97, ...}}}

``step`` is the 0-based optimizer step that ended the cycle (the entry of
``schedule.cycle_ends``); the weights are those right after that step, at the cycle's LR minimum.
The name ``cycle{cycle:03d}-step{step:08d}.pt`` sorts in training order.

Example:
    >>> import torch, tempfile
    >>> d = tempfile.mkdtemp()
    >>> p = save_snapshot(d, {"w": torch.ones(2)}, {"cycle": 0, "step": 9})
    >>> load_snapshot(p)["meta"]["step"]
    9
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from lr_plugins._atomic import atomic_open

__all__ = ["FORMAT", "snapshot_name", "save_snapshot", "load_snapshot", "list_snapshots"]

FORMAT = "lr_plugins.snapshot/1"
_NAME = re.compile(r"^cycle(\d+)-step(\d+)\.pt$")


def snapshot_name(cycle: int, step: int) -> str:
    """The file name of the snapshot that ends ``cycle`` at optimizer ``step``."""
    return f"cycle{cycle:03d}-step{step:08d}.pt"


def _plain(state_dict: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state_dict.items() if isinstance(v, torch.Tensor)}


def save_snapshot(dirpath: str | os.PathLike, state_dict: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write a snapshot atomically: a hidden temporary file in ``dirpath``, then ``os.replace``.

    A failure while writing removes the temporary file and leaves every existing snapshot as
    it was. ``meta`` must hold ``cycle`` and ``step`` (ints) and only primitive values.

    Returns:
        The path of the written file.
    """
    path = Path(dirpath) / snapshot_name(int(meta["cycle"]), int(meta["step"]))
    payload = {"format": FORMAT, "state_dict": _plain(state_dict), "meta": dict(meta)}
    with atomic_open(path) as f:
        torch.save(payload, f)
    return path


def load_snapshot(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a snapshot with ``torch.load(..., weights_only=True)``; checks its format tag."""
    obj = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an lr-plugins snapshot (no format tag {FORMAT!r}).")
    return obj


def list_snapshots(dirpath: str | os.PathLike) -> list[Path]:
    """The snapshot files in ``dirpath``, in training order (empty if the folder is missing)."""
    dirpath = Path(dirpath)
    if not dirpath.is_dir():
        return []
    found = [(int(m[2]), int(m[1]), p) for p in dirpath.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, _, p in sorted(found)]
