"""Ensemble metrics over a data set, one snapshot at a time (pure PyTorch, no Lightning).

For snapshots ``k = 1..K`` with outputs ``z_k(x)``:

* classification: ``p(x) = (1/K) sum_k softmax(z_k(x))``; ``acc = mean[argmax p(x) == y]`` and
  ``loss = mean[-log p(x)_y]`` (the NLL of the averaged probability, Huang et al. 2017);
* regression: ``f(x) = (1/K) sum_k z_k(x)``; ``loss = mean[(f(x) - y)^2]`` (MSE).

Only one snapshot's weights are needed at a time: each is applied with
``torch.func.functional_call``, so the module itself (and its optimizer) is never modified. A
member must fit the module exactly, as ``load_state_dict(strict=True)`` would demand: the same
tensor names and shapes (:func:`misfit`). One that does not (another architecture, a file
replaced during training) is left out with a warning and not counted in ``size``; it never runs
with the module's own weights standing in for what it lacks.

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

import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["TASKS", "infer_task", "misfit", "evaluate_ensemble", "default_input", "default_target"]

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


def misfit(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> str | None:
    """Why ``state_dict`` does not fit ``module`` exactly (strict load: same names, same shapes), or ``None``.

    Example:
        >>> net = nn.Linear(2, 3)
        >>> misfit(net, nn.Linear(2, 3).state_dict()) is None
        True
        >>> misfit(net, nn.Linear(4, 3).state_dict())
        'weight has shape (3, 4), the module (3, 2)'
        >>> misfit(net, {"weight": torch.zeros(3, 2), "extra": torch.zeros(1)})
        'missing bias; unexpected extra'
    """
    own = {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} has shape {tuple(state_dict[k].shape)}, the module {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]

    def few(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    parts = ([f"missing {few(missing)}"] if missing else []) + ([f"unexpected {few(unexpected)}"] if unexpected else [])
    parts += shapes[:2]
    return "; ".join(parts) or None


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
    names: Sequence[str] | None = None,
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
        names: The members' names (e.g. their files), for the warning about a member that does not fit.

    Returns:
        ``{"acc", "loss", "size"}`` for classification, ``{"loss", "size"}`` for regression
        (``size`` is the number of members used: those that fit ``module`` exactly).

    Raises:
        ValueError: no member fits ``module``.
    """
    sums: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    members = 0
    left_out = []
    for j, sd in enumerate(state_dicts):
        why = misfit(module, sd)
        if why is not None:
            left_out.append(f"{names[j] if names is not None else f'member {j}'} ({why})")
            continue
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
    if left_out:
        warnings.warn(
            f"{len(left_out)} ensemble member(s) do not fit the module {type(module).__name__} and are left out: "
            + "; ".join(left_out),
            UserWarning,
            stacklevel=3,
        )
    if members == 0:
        raise ValueError(
            "evaluate_ensemble needs at least one snapshot that fits the module"
            + (f"; {len(left_out)} did not." if left_out else ".")
        )
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
