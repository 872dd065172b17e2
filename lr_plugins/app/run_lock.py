"""A run folder belongs to one live ``lr-train`` run: a lock file, and the sweep-job folder clash check.

:func:`acquire` creates ``<run folder>/.lr_train.lock`` and holds an exclusive ``fcntl.flock`` on
it for the life of the process; the file names its holder (pid, host, start time, command). A
second ``lr-train`` into the same folder cannot take the lock and is refused with one line naming
the holder, before Hydra writes anything there (:class:`~lr_plugins.app.run_guard.RunDirGuard`
takes the lock in ``on_run_start``), so it deletes nothing and writes nothing. The lock goes away
with its process (the kernel drops a dead process's flock): a lock file left by a killed run is
stale, and the next run takes it over. :func:`release` removes the file at exit.

A sweep job's folder is created by Hydra before any job code runs (``.hydra/``, the log). When
two sweeps share one ``hydra.sweep.dir``, or ``hydra.sweep.subdir`` gives several jobs one folder
(``hydra.sweep.subdir=x``), :func:`job_clash` finds the folder held by a live job or holding
another job's ``result.json``; lr-train then refuses the job (a failed row in the summary, naming
the clash), puts back the ``.hydra/`` files of the job that owns the folder (saved in its lock
file), and writes nothing else there.

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> lock = acquire(run)
    >>> (run / LOCK_NAME).exists()
    True
    >>> release(run)
    >>> (run / LOCK_NAME).exists()
    False
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "JOB_FILE", "FolderBusy", "RunLock", "acquire", "release", "holder", "job_clash", "restore_owner_files",
           "refuse_clashing_job"]

LOCK_NAME = ".lr_train.lock"
#: In a sweep job's folder: which job owns it, and its ``.hydra/*.yaml`` (kept after the job ends).
JOB_FILE = ".lr_train.job.json"
_HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


class FolderBusy(Exception):
    """The run folder is held by another live run (or belongs to another sweep job)."""


@dataclass
class RunLock:
    """A held lock: the open file (its flock) and the folder."""

    path: Path
    fd: int


_HELD: dict[Path, RunLock] = {}


def _key(folder: str | os.PathLike) -> Path:
    return Path(os.path.abspath(folder))


def holder(folder: str | os.PathLike) -> dict[str, Any]:
    """What the lock file in ``folder`` says about its holder (``{}`` if unreadable)."""
    try:
        data = json.loads((Path(folder) / LOCK_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(info: dict[str, Any]) -> str:
    started = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {when}"


def acquire(folder: str | os.PathLike, job: dict[str, Any] | None = None) -> RunLock:
    """Create ``folder`` if needed and lock it for this process.

    Args:
        folder: the run folder.
        job: what identifies this run in a sweep (``{"sweep": dir, "num": n}``), kept in the lock file.

    Raises:
        FolderBusy: another live process holds the lock (the message names it, one line).
    """
    key = _key(folder)
    if key in _HELD:
        return _HELD[key]
    key.mkdir(parents=True, exist_ok=True)
    path = key / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(f"run folder {key} is in use by another lr-train run ({_describe(holder(key))}); "
                             "give this run its own folder (hydra.run.dir=...); nothing was written") from None
        try:  # the holder may have removed the file between our open and our lock: lock the file that is there
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "argv": sys.argv[1:],
            "job": job or {}}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    lock = RunLock(path, fd)
    _HELD[key] = lock
    return lock


def save_owner_files(folder: str | os.PathLike, job: dict[str, Any]) -> None:
    """Record in ``folder/.lr_train.job.json`` which sweep job owns it, with a copy of its ``.hydra/*.yaml``
    (Hydra wrote them just before): a clashing job later puts them back."""
    from lr_plugins.files import write_json

    files = {}
    for name in _HYDRA_FILES:
        try:
            files[name] = (Path(folder) / ".hydra" / name).read_text()
        except OSError:
            continue
    write_json(Path(folder) / JOB_FILE, {"job": job, "hydra_files": files})


def _owner(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / JOB_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def release(folder: str | os.PathLike) -> None:
    """Remove the lock file of ``folder`` and drop the lock (no-op if not held)."""
    lock = _HELD.pop(_key(folder), None)
    if lock is None:
        return
    try:
        lock.path.unlink(missing_ok=True)
    finally:
        os.close(lock.fd)


def _release_all() -> None:
    for folder in list(_HELD):
        release(folder)


atexit.register(_release_all)


def job_clash(folder: str | os.PathLike, job: dict[str, Any]) -> str | None:
    """Why sweep job ``job`` may not use ``folder`` (one line), or ``None`` after locking it for the job.

    The folder clashes when another live process holds it, or when it belongs to another job
    (its ``.lr_train.job.json`` names another job, or it holds a ``result.json``): an earlier sweep
    into the same ``hydra.sweep.dir``, or an earlier job of this sweep sharing its
    ``hydra.sweep.subdir``. On a clash the owner's ``.hydra/*.yaml``, which Hydra overwrote before
    any job code ran, are put back.
    """
    key = _key(folder)
    owner = _owner(key)
    other = owner.get("job") or (holder(key).get("job") or {})
    problem = None
    try:
        acquire(key, job)
    except FolderBusy:
        problem = f"job folder {key} is in use by {_job_name(other)} ({_describe(holder(key))})"
    else:
        if (owner and owner.get("job") != job) or (key / "result.json").exists():
            release(key)
            problem = f"job folder {key} already holds the files of {_job_name(other)}"
    if problem is None:
        save_owner_files(key, job)
        return None
    restore_owner_files(key, owner)
    return (f"{problem}: hydra.sweep.dir / hydra.sweep.subdir give two jobs one folder; use a new hydra.sweep.dir "
            "or a hydra.sweep.subdir unique per job (${hydra.job.num}); this job wrote nothing there")


def _job_name(job: dict[str, Any]) -> str:
    if job.get("num") is not None:
        return f"job {job['num']} of the sweep in {job.get('sweep', '?')}"
    return "another run"


def restore_owner_files(folder: str | os.PathLike, owner: dict[str, Any]) -> None:
    """Put back the ``.hydra/*.yaml`` that Hydra overwrote in another job's folder, from its lock file."""
    for name, text in (owner.get("hydra_files") or {}).items():
        if name in _HYDRA_FILES and isinstance(text, str):
            from lr_plugins.files import write_atomic

            write_atomic(Path(folder) / ".hydra" / name, text)


def refuse_clashing_job(run_dir: Path, overrides: list[str]) -> str | None:
    """In a multirun job: lock its folder, or refuse it with one line and a failed row.

    The row is ``<sweep dir>/refused-job<num>-<pid>/result.json`` (``status: failed``, the clash as
    the error), so the sweep summary lists the job without anything written into the other job's folder.
    """
    from hydra.core.hydra_config import HydraConfig

    from lr_plugins.files import write_json

    hc = HydraConfig.get()
    sweep = Path(os.path.abspath(hc.sweep.dir))
    problem = job_clash(run_dir, {"sweep": str(sweep), "num": hc.job.num})
    if problem is None:
        return None
    print(f"lr-train: job {hc.job.num} refused: {problem}", file=sys.stderr)
    write_json(sweep / f"refused-job{hc.job.num}-{os.getpid()}" / "result.json", {
        "overrides": overrides, "status": "failed", "error": f"refused: {problem}", "metrics": {}, "run_dir": str(run_dir)})
    return problem
