"""Lightning glue for DDP: rank-0 work whose failure stops every rank, and spawned workers' exit.

Under DDP every rank must reach the same collectives (barriers, broadcasts, DDP's gradient
all-reduce). Work that only global rank 0 does (writing a file, checking a folder) must therefore
never raise on rank 0 alone: the other ranks would wait at their next collective (until the
process group's timeout, or until ``ddp_spawn`` kills them). :func:`on_rank_zero`
runs it on rank 0 and raises its exception on every rank, so all stop with the same error.

Example:
    >>> import lightning.pytorch as L
    >>> trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn",
    ...                     callbacks=[CleanDistributedExit()])  # doctest: +SKIP
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, TypeVar

import lightning.pytorch as L

__all__ = ["CleanDistributedExit", "error_line", "is_spawn_strategy", "on_rank_zero", "with_clean_exit"]

T = TypeVar("T")


def on_rank_zero(trainer: L.Trainer, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on global rank 0; its result on every rank, or its exception raised on every rank.

    Call it on every rank at the same point (it is a collective: one broadcast). Rank 0 raises
    the original exception (with its traceback); the others raise a copy of it (same type and
    message; an exception that cannot be pickled becomes a ``RuntimeError`` with its text), so a
    failure of rank-0-only work ends the fit on all ranks instead of leaving them at a barrier.
    Without a process group it is just ``fn(*args, **kwargs)``.

    Example:
        >>> import lightning.pytorch as L
        >>> trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
        >>> on_rank_zero(trainer, max, 2, 3)
        3
        >>> on_rank_zero(trainer, int, "x")
        Traceback (most recent call last):
        ...
        ValueError: invalid literal for int() with base 10: 'x'
    """
    result: Any = None
    error: Exception | None = None
    if trainer.is_global_zero:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure of rank 0's work is raised on every rank below
            error = e
    if trainer.world_size > 1:
        sent: Any = trainer.strategy.broadcast((result, _portable(error)) if trainer.is_global_zero else None, src=0)
        if not trainer.is_global_zero:
            result, error = sent
    if error is not None:
        raise error
    return result


def _portable(error: Exception | None) -> Exception | None:
    """``error`` if it survives pickling (what a broadcast does), else a ``RuntimeError`` with its text."""
    if error is None:
        return None
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - whatever pickling raises, the text still travels
        copy = None
    if type(copy) is not type(error) or str(copy) != str(error):
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def error_line(error: BaseException) -> str:
    """One line for ``error``: ``"Type: message"``; for a failed ``ddp_spawn`` worker, the worker's own error line.

    ``torch.multiprocessing`` reports a worker's exception in the parent as a
    ``ProcessRaisedException`` holding the worker's whole traceback; its last line is the error.

    Example:
        >>> error_line(ValueError("bad\\nvalue"))
        'ValueError: bad value'
    """
    text = str(error)
    if type(error).__name__ == "ProcessRaisedException":
        lines = [ln for ln in text.splitlines() if ln.strip()]
        tail = [ln for ln in lines if not ln.startswith((" ", "Traceback", "--", "The above exception"))]
        if tail:
            return " ".join(tail[-1].split())
    return f"{type(error).__name__}: {' '.join(text.split())}"


class CleanDistributedExit(L.Callback):
    """Closes the process group at the end of a ``ddp_spawn`` fit or test, in every worker.

    Spawned workers otherwise leave gloo's threads running into interpreter shutdown, which once
    aborted a worker (``terminate called without an active exception``) after a fit that had
    finished. A barrier comes first, so no rank closes while another still talks. Outside a
    process group it does nothing. Use it with spawned workers only (:func:`is_spawn_strategy`):
    with plain ``ddp`` the launched processes keep their group from fit to test, and a module
    ``teardown`` that still runs collectives after it would fail.
    """

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            trainer.strategy.barrier("clean-exit")
            dist.destroy_process_group()


def is_spawn_strategy(strategy: Any) -> bool:
    """Whether a Trainer ``strategy`` argument runs the fit in workers that it starts and ends
    (``ddp_spawn``, ``ddp_fork``, ``ddp_notebook`` and their variants): there
    :class:`CleanDistributedExit` belongs. Plain ``ddp`` (``start_method="popen"``) keeps one
    process group in the launched processes across fit and test, so it does not qualify.

    Example:
        >>> is_spawn_strategy("ddp_spawn"), is_spawn_strategy("ddp_fork"), is_spawn_strategy("ddp"), is_spawn_strategy(None)
        (True, True, False, False)
    """
    from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

    if isinstance(strategy, str):
        entry = dict.get(StrategyRegistry, strategy)  # the registered entry; StrategyRegistry.get() would build one
        return bool(entry) and entry["init_params"].get("start_method", "popen") != "popen"
    # The one use of Lightning internals in this module (checked against Lightning 2.6; listed in
    # tests/test_private_api.py): a DDPStrategy instance keeps its start method only in the private
    # ``_start_method`` (no public property; ``strategy.launcher`` exists only once a Trainer set it
    # up). tests/test_distributed.py::test_is_spawn_strategy checks DDPStrategy(start_method="spawn").
    return isinstance(strategy, DDPStrategy) and getattr(strategy, "_start_method", "popen") != "popen"


def with_clean_exit(callbacks: list[Any], strategy: Any) -> list[Any]:
    """``callbacks`` plus a :class:`CleanDistributedExit` when ``strategy`` spawns its workers.

    Example:
        >>> [type(c).__name__ for c in with_clean_exit([], "ddp_spawn")], with_clean_exit([], "ddp")
        (['CleanDistributedExit'], [])
    """
    return [*callbacks, CleanDistributedExit()] if is_spawn_strategy(strategy) else list(callbacks)
