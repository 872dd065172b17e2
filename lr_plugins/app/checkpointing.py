"""lr-train's checkpoints: ``last.ckpt`` every epoch (and every N optimizer steps), and the check
that a file given as ``ckpt_path=`` is a training checkpoint of this model.

:class:`LastCheckpoint` is Lightning's ``ModelCheckpoint`` (so every write is Lightning's own,
atomic ``trainer.save_checkpoint``) with one change: ``last.ckpt`` is also written at the end of
every training epoch when no other checkpoint is kept. Plain ``ModelCheckpoint(save_last=True,
save_top_k=0)`` writes ``last.ckpt`` only when training ends, so a run killed in epoch 3 of 3
left nothing to resume from. ``every_n_train_steps=N`` adds a write every N optimizer steps
(Lightning's own trigger); epoch-end writes go on.

:func:`read_checkpoint` loads a ``ckpt_path`` file with ``weights_only=True`` and
:func:`check_matches` compares its ``state_dict`` with the model's (names and shapes), so a
truncated, text, snapshot or other-architecture file is refused with one line before training.

Example:
    >>> cb = LastCheckpoint(dirpath="run/checkpoints", every_n_train_steps=50)
    >>> (cb.save_last, cb.save_top_k)
    (True, 0)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["LastCheckpoint", "read_checkpoint", "check_matches", "progress", "checkpoint_dir", "NotACheckpoint"]


class NotACheckpoint(ValueError):
    """A ``ckpt_path`` file that cannot be resumed from (unreadable, not Lightning's, another model)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``last.ckpt`` at the end of every epoch, also with ``save_top_k=0``.

    Args:
        dirpath: the folder of ``last.ckpt`` (lr-train: ``<run folder>/checkpoints``).
        every_n_train_steps: also write ``last.ckpt`` every this many optimizer steps; ``None``
            or 0: only at epoch ends.
        save_last: ``True`` (default) or ``"link"``; ``False`` writes no ``last.ckpt``.
        save_top_k: as ``ModelCheckpoint``: an integer >= -1 (0: only ``last.ckpt``).
        **kwargs: any other ``ModelCheckpoint`` argument.

    Raises:
        TypeError: ``save_top_k`` or ``every_n_train_steps`` is not an integer of the allowed range.
    """

    def __init__(self, dirpath: str | Path | None = None, every_n_train_steps: int | None = None,
                 save_last: bool | Literal["link"] | None = True, save_top_k: int = 0, **kwargs: Any) -> None:
        if not _is_int(save_top_k) or save_top_k < -1:
            raise TypeError(f"save_top_k={save_top_k!r} is not allowed: save_top_k must be an integer >= -1 "
                            "(-1: keep every checkpoint, 0: only last.ckpt, k: the k best by `monitor`).")
        if every_n_train_steps is not None and (not _is_int(every_n_train_steps) or every_n_train_steps < 0):
            raise TypeError(f"every_n_train_steps={every_n_train_steps!r} is not allowed: every_n_train_steps must be "
                            "null (only at epoch ends) or an integer >= 1 (also every that many optimizer steps).")
        super().__init__(dirpath=dirpath, save_last=save_last, save_top_k=save_top_k,
                         every_n_train_steps=every_n_train_steps or None, **kwargs)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # ModelCheckpoint writes last.ckpt at an epoch end only after a top-k write; with save_top_k=0
        # (or a step trigger) that never happens. Skipped when this step is already saved.
        if self.save_last:
            self._write_last_unless_saved(trainer)

    def _write_last_unless_saved(self, trainer: Any) -> None:
        """Write ``last.ckpt`` as ModelCheckpoint does, unless this step is saved already (or not fitting).

        The one use of Lightning internals in this module (checked against Lightning 2.6; listed in
        tests/test_private_api.py): ``ModelCheckpoint._should_skip_saving_checkpoint``,
        ``_save_last_checkpoint`` and ``_monitor_candidates`` are the steps of ModelCheckpoint's own
        ``on_train_epoch_end``, and it has no public call that writes ``last.ckpt`` alone (the
        public ``trainer.save_checkpoint`` would bypass its ``last_model_path``, version counter,
        ``"link"`` and step bookkeeping). tests/test_checkpointing.py resumes from the epoch-end
        file, so a Lightning release that renames them fails there.
        """
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded with ``weights_only=True``; raises :class:`NotACheckpoint`.

    A Lightning training checkpoint has ``state_dict``, ``global_step`` and ``loops``; an
    lr-plugins snapshot (``format: lr_plugins.snapshot/1``) is named as such.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file fails anywhere in the unpickler (IndexError, EOFError, ...)
        reason = " ".join(str(e).split())[:160]
        raise NotACheckpoint(f"it cannot be read as a checkpoint (truncated, or not a torch file): "
                             f"{type(e).__name__}: {reason}") from e
    if not isinstance(state, dict):
        raise NotACheckpoint(f"it holds a {type(state).__name__}, not a Lightning checkpoint")
    if state.get("format") == "lr_plugins.snapshot/1":
        raise NotACheckpoint("it is an lr-plugins snapshot (weights only), not a training checkpoint: "
                             "evaluate it with lr_plugins.snapshot.load_snapshot, resume from a last.ckpt")
    missing = [k for k in ("state_dict", "global_step", "loops") if k not in state]
    if missing or not isinstance(state.get("state_dict"), dict):
        raise NotACheckpoint(f"it is not a Lightning training checkpoint (no {', '.join(missing) or 'state_dict'})")
    return state


def check_matches(state: dict[str, Any], model: Any) -> None:
    """Raise :class:`NotACheckpoint` unless ``state['state_dict']`` has the model's names and shapes."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(getattr(v, "shape", ())) for k, v in state["state_dict"].items()}
    missing, unexpected = sorted(own.keys() - theirs.keys()), sorted(theirs.keys() - own.keys())
    shapes = sorted(k for k in own.keys() & theirs.keys() if own[k] != theirs[k])
    if not (missing or unexpected or shapes):
        return
    parts = []
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} weight(s) of another shape ({k}: {list(theirs[k])} in the file, {list(own[k])} here)")
    if missing:
        parts.append(f"{len(missing)} weight(s) missing ({missing[0]}, ...)")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected weight(s) ({unexpected[0]}, ...)")
    raise NotACheckpoint(f"it is a checkpoint of another model: {'; '.join(parts)}")


def progress(state: dict[str, Any]) -> tuple[int, int]:
    """``(epochs completed, optimizer steps)`` of a Lightning checkpoint."""
    try:  # "processed": an epoch-end checkpoint is written before Lightning counts the epoch "completed"
        epochs = int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        epochs = int(state.get("epoch", 0))
    return epochs, int(state.get("global_step", 0))


def checkpoint_dir(callbacks: list[Any]) -> Path | None:
    """The folder of the first ``ModelCheckpoint`` among ``callbacks`` that has one."""
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.dirpath:
            return Path(cb.dirpath)
    return None
