"""Inference with a snapshot ensemble: one module that averages the members' predictions.

``EnsembleModule`` is a ``LightningModule`` (so also a plain ``nn.Module``):

* classification: ``forward(x) = (1/K) sum_k softmax(member_k(x))``, probabilities;
* regression: ``forward(x) = (1/K) sum_k member_k(x)``.

It works with ``trainer.predict`` (``predict_step`` returns ``forward(x)``), with
``trainer.test`` / ``trainer.validate`` (logs ``test/acc`` and ``test/loss``, the NLL of the mean
probability, or the MSE for regression) and in plain PyTorch.

Example:
    >>> import tempfile, torch
    >>> from torch import nn
    >>> from lr_plugins.snapshot import load_ensemble, save_snapshot
    >>> folder = tempfile.mkdtemp()
    >>> for cycle in range(3):  # what SnapshotEnsemble writes at three cycle ends
    ...     _ = save_snapshot(folder, nn.Linear(4, 3).state_dict(), {"cycle": cycle, "step": 9 + 10 * cycle})
    >>> ens = load_ensemble(folder, nn.Linear(4, 3), keep=2)
    >>> probs = ens(torch.randn(5, 4))
    >>> len(ens.members), tuple(probs.shape), bool(torch.allclose(probs.sum(-1), torch.ones(5)))
    (2, (5, 3), True)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

from lr_plugins._validation import check_choice, check_int
from lr_plugins.snapshot.evaluate import default_input, default_target
from lr_plugins.snapshot.store import list_snapshots, load_snapshot

__all__ = ["EnsembleModule", "load_ensemble"]


class EnsembleModule(L.LightningModule):
    """Average of several copies of ``module``, each with one snapshot's weights.

    Args:
        module: The architecture; it is copied once per member and left unchanged.
        state_dicts: One state_dict per member.
        task: ``"classification"`` (average softmax probabilities) or ``"regression"``
            (average outputs).
        metas: Optional metadata of each member (kept in ``self.metas``).
        names: Optional name of each member (e.g. its file), used in error messages.

    Raises:
        ValueError: a state_dict does not fit ``module`` (the message names the member).
    """

    def __init__(
        self,
        module: nn.Module,
        state_dicts: Sequence[dict[str, torch.Tensor]],
        *,
        task: str = "classification",
        metas: Sequence[dict[str, Any]] | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.task = check_choice("task", task, ("classification", "regression"))
        if not isinstance(module, nn.Module):
            raise TypeError(f"module={module!r} is not allowed: module must be a torch.nn.Module instance.")
        if len(state_dicts) == 0:
            raise ValueError("state_dicts=[] is not allowed: an ensemble needs at least one snapshot.")
        members = []
        for i, sd in enumerate(state_dicts):
            member = copy.deepcopy(module)
            try:
                member.load_state_dict(sd)
            except RuntimeError as e:
                name = repr(names[i]) if names is not None else f"member {i}"
                raise ValueError(
                    f"snapshot {name} does not fit the module {type(module).__name__}: {str(e).strip()}"
                ) from None
            members.append(member)
        self.members = nn.ModuleList(members)
        self.metas = list(metas) if metas is not None else [{} for _ in state_dicts]
        self.eval()

    def forward(self, x: Any) -> torch.Tensor:
        outs = [m(x).float() for m in self.members]
        if self.task == "classification":
            outs = [o.softmax(-1) for o in outs]
        return torch.stack(outs).mean(0)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self(default_input(batch))

    def _evaluate(self, batch: Any, stage: str) -> None:
        out, y = self(default_input(batch)), default_target(batch)
        if self.task == "classification":
            nll = -torch.log(out.gather(-1, y.long().unsqueeze(-1)).clamp_min(1e-12)).mean()
            self.log(f"{stage}/loss", nll, sync_dist=True)
            self.log(f"{stage}/acc", (out.argmax(-1) == y).float().mean(), sync_dist=True)
        else:
            self.log(f"{stage}/loss", nn.functional.mse_loss(out, y.to(out.dtype).reshape(out.shape)), sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")


def load_ensemble(
    dirpath: str | os.PathLike,
    module: nn.Module,
    *,
    keep: int | None = None,
    task: str = "classification",
    map_location: Any = "cpu",
) -> EnsembleModule:
    """Build an :class:`EnsembleModule` from the snapshots in ``dirpath`` (the last ``keep``).

    Args:
        dirpath: A folder written by ``SnapshotEnsemble``.
        module: An instance of the trained architecture (its weights are not used).
        keep: Use only the last ``keep`` snapshots (``None``: all of them).
        task: ``"classification"`` or ``"regression"``.
        map_location: Passed to ``torch.load``.

    Raises:
        ValueError: no snapshot in ``dirpath``, or a file that is truncated, corrupt, not a
            snapshot or does not fit ``module`` (the message names the file).

    Example:
        >>> ens = load_ensemble("runs/snapshots", model, keep=3)  # doctest: +SKIP
        >>> trainer.predict(ens, dataloaders=loader)  # doctest: +SKIP
    """
    check_int("keep", keep, low=1, optional=True)
    paths = list_snapshots(dirpath)
    if not paths:
        raise ValueError(f"dirpath={os.fspath(dirpath)!r} holds no snapshots (files cycleNNN-stepNNNNNNNN.pt).")
    if keep is not None:
        paths = paths[-keep:]
    loaded = [load_snapshot(p, map_location=map_location) for p in paths]
    return EnsembleModule(
        module,
        [s["state_dict"] for s in loaded],
        task=task,
        metas=[s["meta"] for s in loaded],
        names=[os.fspath(p) for p in paths],
    )
