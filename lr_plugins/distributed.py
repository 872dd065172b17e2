"""Lightning glue for spawned DDP workers (``strategy="ddp_spawn"``).

Example:
    >>> import lightning.pytorch as L
    >>> trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn",
    ...                     callbacks=[CleanDistributedExit()])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L

__all__ = ["CleanDistributedExit", "is_spawn_strategy", "with_clean_exit"]


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
    return isinstance(strategy, DDPStrategy) and getattr(strategy, "_start_method", "popen") != "popen"


def with_clean_exit(callbacks: list[Any], strategy: Any) -> list[Any]:
    """``callbacks`` plus a :class:`CleanDistributedExit` when ``strategy`` spawns its workers.

    Example:
        >>> [type(c).__name__ for c in with_clean_exit([], "ddp_spawn")], with_clean_exit([], "ddp")
        (['CleanDistributedExit'], [])
    """
    return [*callbacks, CleanDistributedExit()] if is_spawn_strategy(strategy) else list(callbacks)
