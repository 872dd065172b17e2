"""Ensemble metrics over a data set, one snapshot at a time (pure PyTorch, no Lightning).

For snapshots ``k = 1..K`` with outputs ``z_k(x)``:

* classification: ``p(x) = (1/K) sum_k softmax(z_k(x))``; ``acc = mean[argmax p(x) == y]`` and
  ``loss = mean[-log p(x)_y]`` (the NLL of the averaged probability, Huang et al. 2017);
* regression: ``f(x) = (1/K) sum_k z_k(x)``; ``loss = mean[(f(x) - y)^2]`` (MSE).

Only one snapshot's weights are needed at a time: each is applied with
``torch.func.functional_call``, so the module itself (and its optimizer) is never modified.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(2, 3)
    >>> sds = [{k: torch.zeros_like(v) for k, v in net.state_dict().items()}] * 2
    >>> batches = lambda: [(torch.ones(4, 2), torch.zeros(4, dtype=torch.long))]
    >>> r = evaluate_ensemble(net, sds, batches)
    >>> round(r["loss"], 4), r["acc"]   # uniform over 3 classes: -log(1/3)
    (1.0986, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["TASKS", "infer_task", "evaluate_ensemble", "default_input", "default_target"]

TASKS = ("auto", "classification", "regression")


def default_input(batch: Any) -> Any:
    """``x`` of a batch ``(x, y, ...)``, or the batch itself when it is not a sequence."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def default_target(batch: Any) -> torch.Tensor:
    """``y`` of a batch ``(x, y, ...)``."""
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise TypeError(
            "SnapshotEnsemble evaluates batches of the form (x, y); got a batch of type "
            f"{type(batch).__name__}. Override get_input/get_target in a subclass for other layouts."
        )
    return batch[1]


def infer_task(output: torch.Tensor, target: torch.Tensor) -> str:
    """``"classification"`` for integer targets of shape ``output.shape[:-1]``, else ``"regression"``."""
    integer = not target.is_floating_point() and not target.is_complex() and target.dtype != torch.bool
    if integer and output.dim() == target.dim() + 1 and output.shape[:-1] == target.shape and output.shape[-1] >= 2:
        return "classification"
    return "regression"


@torch.no_grad()
def evaluate_ensemble(
    module: nn.Module,
    state_dicts: Iterable[dict[str, torch.Tensor]],
    batches: Callable[[], Iterable[Any]],
    *,
    task: str = "auto",
    get_input: Callable[[Any], Any] = default_input,
    get_target: Callable[[Any], torch.Tensor] = default_target,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    context: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, float]:
    """Metrics of the ensemble of ``state_dicts`` applied to ``module``.

    Args:
        module: The architecture (in the mode it should run in, normally ``eval()``).
        state_dicts: The members' weights; consumed lazily, one at a time.
        batches: Returns a fresh iterable over the (device-ready) batches; called once per member.
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (see :func:`infer_task`).
        get_input, get_target: Extract ``x`` and ``y`` from a batch.
        reduce: Sums a tensor over processes (DDP); ``None`` for a single process.
        context: A context manager factory wrapped around each forward (e.g. autocast).

    Returns:
        ``{"acc", "loss", "size"}`` for classification, ``{"loss", "size"}`` for regression
        (``size`` is the number of members).
    """
    sums: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    members = 0
    for sd in state_dicts:
        for i, batch in enumerate(batches()):
            with context():
                out = functional_call(module, sd, (get_input(batch),))
            out = out.float()
            if members == 0:
                y = get_target(batch)
                if task == "auto":
                    task = infer_task(out, y)
                targets.append(y)
                sums.append(out.softmax(-1) if task == "classification" else out.clone())
            else:
                sums[i] += out.softmax(-1) if task == "classification" else out
        members += 1
    if members == 0:
        raise ValueError("evaluate_ensemble needs at least one snapshot.")
    device = sums[0].device if sums else torch.device("cpu")
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # [count, loss sum, correct]
    for s, y in zip(sums, targets):
        mean = s / members
        y = y.to(mean.device)
        if task == "classification":
            p_true = mean.gather(-1, y.long().unsqueeze(-1)).squeeze(-1)
            totals[0] += y.numel()
            totals[1] += -torch.log(p_true.clamp_min(1e-12)).double().sum()
            totals[2] += (mean.argmax(-1) == y).double().sum()
        else:
            totals[0] += mean.numel()
            totals[1] += ((mean - y.to(mean.dtype).reshape(mean.shape)) ** 2).double().sum()
    if reduce is not None:
        totals = reduce(totals)
    count = max(float(totals[0]), 1.0)
    result = {"loss": float(totals[1]) / count, "size": float(members)}
    if task == "classification":
        result["acc"] = float(totals[2]) / count
    return result
