"""Snapshot files: one ``.pt`` per cycle end, written atomically, read with ``weights_only=True``.

A snapshot file holds only plain tensors and primitive metadata::

    {"format": "lr_plugins.snapshot/1",
     "state_dict": {name: tensor, ...},            # the module's state_dict, on CPU
     "meta": {"cycle": 2, "step": 299, "global_step": 300, "epoch": 14,
              "lr": 0.0, "val": {"val/acc": 0.97, ...}}}

``step`` is the 0-based optimizer step that ended the cycle (the entry of
``schedule.cycle_ends``); the weights are those right after that step, at the cycle's LR minimum.
The name ``cycle{cycle:03d}-step{step:08d}.pt`` sorts in training order. Only files with such a
name, directly in the snapshot folder, are ever read, listed or deleted (:func:`confined`); the
atomic writer's leftovers of a killed process (``.cycle000-step00000009.pt.<random>.tmp``) are
removed by :func:`remove_leftovers`.

Example:
    >>> import torch, tempfile
    >>> d = tempfile.mkdtemp()
    >>> p = save_snapshot(d, {"w": torch.ones(2)}, {"cycle": 0, "step": 9})
    >>> p.name, load_snapshot(p)["meta"]["step"]
    ('cycle000-step00000009.pt', 9)
    >>> confined(d, "../cycle000-step00000009.pt") is None
    True
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from lr_plugins.files import atomic_open

__all__ = [
    "FORMAT",
    "snapshot_name",
    "parse_name",
    "confined",
    "save_snapshot",
    "load_snapshot",
    "check_snapshot",
    "list_snapshots",
    "blocked_names",
    "remove_leftovers",
]

FORMAT = "lr_plugins.snapshot/1"
_NAME = re.compile(r"^cycle(\d{3,})-step(\d{8,})\.pt$")
# atomic_open's temporary name for a snapshot: "." + name + "." + mkstemp's random part + ".tmp"
_TMP = re.compile(r"^\.cycle\d{3,}-step\d{8,}\.pt\.[a-z0-9_]{8}\.tmp$")


def snapshot_name(cycle: int, step: int) -> str:
    """The file name of the snapshot that ends ``cycle`` at optimizer ``step``.

    Example:
        >>> snapshot_name(2, 299)
        'cycle002-step00000299.pt'
    """
    return f"cycle{cycle:03d}-step{step:08d}.pt"


def parse_name(name: str) -> tuple[int, int] | None:
    """``(cycle, step)`` of a snapshot file name, ``None`` if ``name`` is not one.

    Example:
        >>> parse_name("cycle002-step00000299.pt"), parse_name("../cycle002-step00000299.pt")
        ((2, 299), None)
    """
    m = _NAME.match(name) if isinstance(name, str) else None
    return (int(m[1]), int(m[2])) if m else None


def confined(dirpath: str | os.PathLike, name: str) -> Path | None:
    """``dirpath / name`` if ``name`` is a bare snapshot file name, else ``None``.

    A name with a folder part (``../x``, ``/abs/x``), a link, or any other file name is refused,
    so a name read from a checkpoint can never point outside the snapshot folder.
    """
    if parse_name(name) is None or os.path.basename(name) != name:
        return None
    path = Path(dirpath) / name
    return None if path.is_symlink() else path


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


def _checked(obj: Any, path: str | os.PathLike) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an lr-plugins snapshot (no format tag {FORMAT!r}).")
    sd, meta = obj.get("state_dict"), obj.get("meta")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{os.fspath(path)!r}: 'state_dict' must be a dict of tensors.")
    if not isinstance(meta, dict):
        raise ValueError(f"{os.fspath(path)!r}: 'meta' must be a dict.")
    return obj


def _load(path: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    try:
        obj = torch.load(path, weights_only=True, **kwargs)
    except FileNotFoundError:
        raise FileNotFoundError(f"snapshot {os.fspath(path)!r} does not exist.") from None
    except Exception as e:  # truncated or corrupt: zip errors, unpickling errors, EOF
        raise ValueError(
            f"snapshot {os.fspath(path)!r} cannot be read (truncated or corrupt?): {type(e).__name__}: {e}"
        ) from e
    return _checked(obj, path)


def load_snapshot(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a snapshot with ``torch.load(..., weights_only=True)``; checks its format and layout.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        ValueError: ``path`` is truncated, corrupt or not a snapshot (the message names it).
    """
    return _load(path, map_location=map_location)


def check_snapshot(path: str | os.PathLike) -> dict[str, Any]:
    """Raise like :func:`load_snapshot` if ``path`` is not a readable snapshot; cheap.

    The file is memory-mapped (``torch.load(mmap=True)``), so the tensors are not read: a
    missing, truncated or foreign file is caught, a flipped bit inside a tensor is not.

    Returns:
        The snapshot, its tensors memory-mapped (names, shapes and ``meta`` are read without
        reading the weights).
    """
    return _load(path, mmap=True)


def list_snapshots(dirpath: str | os.PathLike) -> list[Path]:
    """The snapshot files in ``dirpath`` (plain files, not links), in training order (empty if the folder is missing)."""
    dirpath = Path(dirpath)
    if not dirpath.is_dir():
        return []
    found = [
        (int(m[2]), int(m[1]), p)
        for p in dirpath.iterdir()
        if (m := _NAME.match(p.name)) and not p.is_symlink() and p.is_file()
    ]
    return [p for _, _, p in sorted(found)]


def blocked_names(dirpath: str | os.PathLike) -> list[str]:
    """The snapshot names in ``dirpath`` taken by something that is not a plain file (a folder, a link).

    A snapshot cannot be written over them (``os.replace`` onto a folder fails; onto a link it
    would replace someone else's link), so they are refused at fit start.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> (d / "cycle000-step00000009.pt").mkdir()
        >>> blocked_names(d), list_snapshots(d)
        (['cycle000-step00000009.pt'], [])
    """
    dirpath = Path(dirpath)
    if not dirpath.is_dir():
        return []
    return sorted(p.name for p in dirpath.iterdir() if _NAME.match(p.name) and (p.is_symlink() or not p.is_file()))


def remove_leftovers(dirpath: str | os.PathLike) -> list[str]:
    """Delete the temporary files a killed snapshot write left in ``dirpath``; return their names.

    Only plain files named like the atomic writer's temporary snapshot files
    (``.cycle000-step00000009.pt.<random>.tmp``) are removed; nothing else is touched.
    """
    dirpath = Path(dirpath)
    if not dirpath.is_dir():
        return []
    removed = []
    for p in dirpath.iterdir():
        if _TMP.match(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return sorted(removed)
