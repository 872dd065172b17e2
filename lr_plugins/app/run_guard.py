"""Remove only what this ``lr-train`` invocation created when it refuses a config.

Hydra creates the run folder (``hydra.run.dir``), its ``.hydra/`` and ``<job>.log`` before the
task function starts, so the task function cannot tell a folder Hydra just made from a user's
folder that was already there. :class:`RunDirGuard` (a Hydra callback listed in
``conf/lr_train.yaml``) looks first: ``on_run_start`` runs before Hydra touches the disk and
records whether the run folder exists, which of its ancestors exist, and the names it already
holds. :func:`remove_created` then removes

* in a run folder that did not exist, the entries this app writes (:data:`OWN_NAMES`), then the
  folder itself if that left it empty, with every ancestor folder that did not exist either and
  is empty again (``outputs/<date>/`` of a first run); a file of another name keeps the folder
  (it is not ours); never a folder that existed before;
* in a folder that existed (``hydra.run.dir=../precious``, ``hydra.run.dir=..``, a crashed run's
  folder), only the entries it did not hold before AND that this app writes (:data:`OWN_NAMES`:
  Hydra's ``.hydra/`` and log, ``tb/``, ...); nothing that was there, nothing inside a
  sub-folder that was there, and no new file of another name (another process may be writing);
* nothing at all when no record was taken (the callback is not configured): when in doubt, keep.

The same callback takes the run folder's lock (:mod:`lr_plugins.app.run_lock`) right after the
record, before Hydra writes: a second live run into the folder is refused there, having written
nothing, so no refused run can remove a file of a concurrent one.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "precious").mkdir(); _ = (root / "precious" / "a.txt").write_text("x")
    >>> record(root / "precious")
    >>> _ = (root / "precious" / "run.log").write_text("new")
    >>> _ = (root / "precious" / "b.txt").write_text("someone else's, written meanwhile")
    >>> [p.name for p in remove_created(root / "precious")], sorted(p.name for p in (root / "precious").iterdir())
    (['run.log'], ['a.txt', 'b.txt'])
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from lr_plugins.app.run_lock import LOCK_NAME

__all__ = ["RunDirGuard", "record", "remove_created", "OWN_NAMES"]


@dataclass(frozen=True)
class _Before:
    existed: bool  # the run folder itself
    names: frozenset[str]  # what it held (top level)
    new_parents: tuple[Path, ...]  # ancestors that did not exist, deepest first


_RECORDS: dict[Path, _Before] = {}

#: What Hydra and lr-train write into a run folder. In a folder that existed before the run,
#: a refused run removes only new entries with these names.
OWN_NAMES = (".hydra", "*.log", "tb", "history.json", "snapshots", "lightning_logs", "lr_finder", "checkpoints",
             ".lr_train.lock")


def _key(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(path))


def record(run_dir: str | os.PathLike) -> None:
    """Remember what exists at ``run_dir`` now, before anything is written there."""
    path = _key(run_dir)
    new_parents = []
    parent = path.parent
    while not os.path.lexists(parent):
        new_parents.append(parent)
        parent = parent.parent
    existed = os.path.lexists(path)
    names = frozenset(os.listdir(path)) if existed and path.is_dir() else frozenset()
    _RECORDS[path] = _Before(existed, names, tuple(new_parents))


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def remove_created(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what appeared at ``run_dir`` since :func:`record`; return the removed paths.

    Never removes a folder that existed at :func:`record` (the current folder or one above it
    included), an entry it held then, an entry whose name is not in :data:`OWN_NAMES` (another
    process may be writing next to us), or anything when ``run_dir`` was not recorded.
    """
    from lr_plugins.app.run_lock import release

    path = _key(run_dir)
    before = _RECORDS.pop(path, None)
    cwd = _key(os.getcwd())
    if before is None or not path.is_dir() or path.is_symlink():
        return []
    removed: list[Path] = []
    for entry in sorted(path.iterdir()):  # the lock is held meanwhile: no other run can start writing here
        if entry.name != LOCK_NAME and entry.name not in before.names and any(
            fnmatch.fnmatch(entry.name, own) for own in OWN_NAMES
        ):
            _remove(entry)
            removed.append(entry)
    if (path / LOCK_NAME).exists():
        release(path)  # this run's lock (only held while this process runs): the file goes, last
    if before.existed or path == cwd or path in cwd.parents or any(path.iterdir()):
        return removed  # a folder that was there, or one that holds a file this run did not write: kept
    path.rmdir()
    removed = [path]
    for parent in before.new_parents:  # deepest first; stop at the first that is not empty
        if parent == cwd or parent in cwd.parents or not parent.is_dir() or any(parent.iterdir()):
            break
        parent.rmdir()
        removed.append(parent)
    return removed


class RunDirGuard(Callback):
    """Hydra callback: :func:`record` the run folder before Hydra creates it (single runs).

    Listed in ``conf/lr_train.yaml`` as ``hydra.callbacks.run_dir_guard``.
    """

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        # ${now:...} is cached on this config object, so run_job resolves the same folder.
        try:
            run_dir = str(config.hydra.run.dir)
            record(run_dir)
        except Exception:  # noqa: BLE001 - no record means: remove nothing
            return
        from lr_plugins.app.run_lock import FolderBusy, acquire

        try:  # one live run per folder, before Hydra writes anything into it
            acquire(run_dir)
        except FolderBusy as e:
            _RECORDS.pop(_key(run_dir), None)
            print(f"lr-train: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    def on_run_end(self, config: Any, **kwargs: Any) -> None:
        from lr_plugins.app.run_lock import release

        release(str(config.hydra.run.dir))
