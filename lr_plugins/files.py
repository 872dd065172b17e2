"""Files the suite writes: atomic writes and the "can this folder be written?" probe.

Atomic writes go to a hidden temporary file in the target folder, then ``os.replace``: a reader
never sees a half-written file, and a failure while writing leaves the previous file (if any) as
it was and no temporary file behind. :func:`unwritable_reason` is the one write check that the
LR finder, the snapshot ensemble and the ``lr-train`` app run before the first training step.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "write_atomic", "write_json", "unwritable_reason", "disk_full_hint"]


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path``, on error it is removed.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_open(p, "w") as f:
        ...     _ = f.write("done")
        >>> p.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        text: dict[str, Any] = {} if "b" in mode else {"newline": ""}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes or text) to ``path`` atomically and return the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return Path(path)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(data, indent=1).encode())


def unwritable_reason(folder: str | os.PathLike, *, create: bool = False) -> str | None:
    """Why ``folder`` cannot be (created and) written to, or ``None`` when it can.

    A probe file is written into ``folder`` (or, while ``folder`` does not exist and
    ``create`` is False, into its nearest existing parent) and removed; with ``create=True`` the
    missing folders are made and, after the probe, removed again: nothing is left behind either way.

    Example:
        >>> import tempfile, pathlib
        >>> unwritable_reason(pathlib.Path(tempfile.mkdtemp()) / "new" / "folder") is None
        True
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "file"
        >>> _ = f.write_text("x")
        >>> unwritable_reason(f)
        'it is a file, not a folder'
    """
    target = Path(folder).expanduser().absolute()
    if target.exists() and not target.is_dir():
        return "it is a file, not a folder"
    missing, existing = [], target
    while not existing.exists() and existing != existing.parent:
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    created: list[Path] = []
    try:
        probe_dir = existing
        if create:
            for d in reversed(missing):
                d.mkdir()
                created.append(d)
            probe_dir = target
        fd, probe = tempfile.mkstemp(dir=probe_dir, prefix=".lr_plugins-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"{probe_dir if not created else target} cannot be written ({type(e).__name__}: {e.strerror or e})"
    finally:
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass
    return None


def disk_full_hint(error: OSError) -> str:
    """A phrase for a failed write: says "the disk is full" for ENOSPC/EDQUOT, else the OS message.

    Example:
        >>> import errno
        >>> disk_full_hint(OSError(errno.ENOSPC, "No space left on device"))
        'the disk is full (No space left on device)'
    """
    import errno

    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"the disk is full ({error.strerror or error})"
    return f"{type(error).__name__}: {error.strerror or error}"
