"""Which checkpoint ``ckpt_path=`` resumes, said in one line, and whether there is anything left to train.

``ckpt_path`` takes:

* a file: that checkpoint;
* a folder: the newest ``last.ckpt`` under it (a run folder, or a folder of runs);
* ``last``: the newest ``last.ckpt`` under ``outputs/`` (lr-train's runs), other than in this
  run's own folder: "continue the newest run". "Newest" is the ``last.ckpt`` written last
  (modification time in ns, then the path, so the choice is deterministic). A run killed or
  interrupted mid-way wrote it at its last epoch end (or step interval, or signal); a run that
  continued it wrote a newer one, so a chain of resumes always continues its newest link. When
  that run had finished, there is nothing to train (:class:`AlreadyComplete`).

The line lr-train prints names the run folder, whether it finished, its epochs and step.

:func:`plan_resume` reads the chosen file (``weights_only=True``), checks that it is a training
checkpoint of this model, and raises :class:`AlreadyComplete` when its training already reached
this run's ``trainer.max_epochs`` / ``max_steps``: nothing would be trained, so lr-train says so
(exit status 0) instead of reporting the old result as a new one.

Example:
    >>> from pathlib import Path
    >>> resolve("", Path(".")) is None
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_plugins.app.checkpointing import NotACheckpoint, check_matches, progress, read_checkpoint

__all__ = ["Resume", "AlreadyComplete", "resolve", "plan_resume", "run_folder_of", "is_finished", "planned_limits"]

#: Lightning's ``max_epochs`` when ``max_epochs`` is null and ``max_steps`` is -1 (its warning says so).
LIGHTNING_DEFAULT_EPOCHS = 1000


class AlreadyComplete(Exception):
    """The checkpoint's training already reached this run's length: nothing to train."""


@dataclass(frozen=True)
class Resume:
    """The checkpoint a run resumes from."""

    path: Path
    run_dir: Path | None  # the run folder it belongs to (the folder holding .hydra/ or result.json)
    epochs: int  # epochs completed in it
    step: int  # optimizer steps done in it
    finished: bool  # its run wrote result.json with status ok

    def line(self) -> str:
        """One line for the log: which run, which file, where in training."""
        run = f"run {self.run_dir}" if self.run_dir else "no lr-train run folder"
        state = "finished" if self.finished else "unfinished"
        return f"lr-train: resuming {run} ({state}) from {self.path}: epoch {self.epochs} done, optimizer step {self.step}"


def run_folder_of(ckpt: Path) -> Path | None:
    """The lr-train run folder holding ``ckpt`` (``<run>/checkpoints/last.ckpt`` -> ``<run>``)."""
    for folder in list(ckpt.resolve().parents)[:3]:
        if (folder / ".hydra").is_dir() or (folder / "result.json").exists():
            return folder
    return None


def is_finished(run_dir: Path | None) -> bool:
    """Whether ``run_dir`` holds a ``result.json`` with ``status: ok``."""
    if run_dir is None:
        return False
    try:
        return json.loads((run_dir / "result.json").read_text()).get("status", "ok") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


def _newest(paths: list[Path]) -> Path:
    return max(paths, key=lambda p: (p.stat().st_mtime_ns, str(p)))


def resolve(value: Any, run_dir: Path, runs_root: str | os.PathLike = "outputs") -> Path | None:
    """The checkpoint file ``ckpt_path=value`` names; ``None`` for a fresh start.

    Raises:
        ValueError: no such file, or no ``last.ckpt`` where one was asked for (one line).
    """
    if value is None or value == "":
        return None
    text = str(value)
    folder = Path(runs_root) if text == "last" else Path(text)
    if text != "last" and folder.is_file():
        return folder
    if folder.is_dir():
        here = run_dir.resolve()
        found = [p for p in folder.rglob("last.ckpt") if p.is_file() and here not in p.resolve().parents]
        if found:
            return _newest(found)
    what = f"no last.ckpt under {folder}" if folder.is_dir() or text == "last" else "no such file or folder"
    raise ValueError(
        f"ckpt_path={text!r} is not allowed: {what}; give a checkpoint file, a folder holding a last.ckpt "
        "(its newest is used), or `last` (the newest last.ckpt under outputs/)"
    )


def planned_limits(trainer_cfg: dict[str, Any]) -> tuple[int, int]:
    """``(max_epochs, max_steps)`` as Lightning resolves them (-1: no limit; null epochs: 1000)."""
    max_steps = trainer_cfg.get("max_steps", -1)
    max_steps = -1 if max_steps is None else int(max_steps)
    max_epochs = trainer_cfg.get("max_epochs")
    if max_epochs is None:
        max_epochs = LIGHTNING_DEFAULT_EPOCHS if max_steps == -1 and trainer_cfg.get("max_time") is None else -1
    return int(max_epochs), max_steps


def plan_resume(path: Path | None, model: Any, trainer_cfg: dict[str, Any], label: str = "ckpt_path") -> Resume | None:
    """Check the checkpoint at ``path`` against ``model`` and this run's length.

    Raises:
        ValueError: the file is not a training checkpoint of this model (one line naming ``label``).
        AlreadyComplete: its training already reached ``trainer.max_epochs`` / ``max_steps``.
    """
    if path is None:
        return None
    try:
        state = read_checkpoint(path)
        check_matches(state, model)
    except NotACheckpoint as e:
        raise ValueError(f"{label}={str(path)!r} is not allowed: {e}; give a last.ckpt of an lr-train run "
                         "of this model") from e
    epochs, step = progress(state)
    run = run_folder_of(path)
    resume = Resume(Path(path), run, epochs, step, is_finished(run))
    max_epochs, max_steps = planned_limits(trainer_cfg)
    reached = ("trainer.max_steps", max_steps) if max_steps != -1 and step >= max_steps else (
        ("trainer.max_epochs", max_epochs) if max_epochs != -1 and epochs >= max_epochs else None)
    if reached is not None:
        key, limit = reached
        raise AlreadyComplete(
            f"lr-train: nothing to train: {path} ({'run ' + str(run) if run else 'checkpoint'}) already completed "
            f"{epochs} epoch(s), {step} optimizer step(s), which reaches {key}={limit}; its result is that run's "
            f"result.json. Raise {key} to train on."
        )
    return resume
