"""An in-memory snapshot of everything the range test touches, and its exact restore.

Captured (deep copies, never a file): every parameter and buffer of the module (and each
parameter's ``.grad``), torchmetrics states inside the module, every optimizer's ``state_dict``
(state and param groups), every LR scheduler's ``state_dict`` and its optimizer-group keys, the
AMP grad scaler, the RNG states of torch (CPU and CUDA), numpy and ``random``, the states of the
``torch.Generator`` objects of the train dataloader(s) (their shuffling) and the Trainer's
``global_step`` / fit-loop state, which the test must leave alone.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

__all__ = ["TrainingState", "loader_generators"]


def loader_generators(iterables: Any) -> list[torch.Generator]:
    """Every ``torch.Generator`` a dataloader (or a list/dict of them) draws its shuffling from."""
    found: list[torch.Generator] = []

    def visit(obj: Any) -> None:
        if obj is None:
            return
        if isinstance(obj, dict):
            for v in obj.values():
                visit(v)
            return
        if isinstance(obj, (list, tuple)):
            for v in obj:
                visit(v)
            return
        for holder in (obj, getattr(obj, "sampler", None), getattr(obj, "batch_sampler", None)):
            for candidate in (holder, getattr(holder, "sampler", None)):
                g = getattr(candidate, "generator", None)
                if isinstance(g, torch.Generator) and all(g is not f for f in found):
                    found.append(g)

    visit(iterables)
    return found


def _metric_modules(module: torch.nn.Module) -> Iterable[Any]:
    """The torchmetrics ``Metric`` modules inside ``module`` (torchmetrics comes with Lightning)."""
    try:
        from torchmetrics import Metric
    except ImportError:  # pragma: no cover - Lightning requires torchmetrics
        return
    for m in module.modules():
        if isinstance(m, Metric):
            yield m


def _metric_counters(metric: Any, saved: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
    """A copy of ``metric``'s update count and cached ``compute()`` result; with ``saved``, put them back.

    The one use of another library's internals in this module (checked against torchmetrics 1.9;
    listed in tests/test_private_api.py): the states themselves are public (``metric_state``, and
    each state is an attribute of its name), ``update_count`` is a read-only property over
    ``_update_count`` and the ``compute()`` cache ``_computed`` has no public name; neither has
    a public setter. tests/test_finder_restore.py restores a ``MeanMetric`` through this function.
    """
    if saved is not None:
        metric._update_count, metric._computed = copy.deepcopy(saved)
    return copy.deepcopy((metric._update_count, metric._computed))


class TrainingState:
    """Capture at construction; :meth:`restore` puts everything back bit for bit.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> state = TrainingState(net, [opt])
        >>> net.weight.data.add_(1.0); state.restore()  # doctest: +ELLIPSIS
        tensor(...)
    """

    def __init__(
        self,
        module: torch.nn.Module,
        optimizers: list[torch.optim.Optimizer],
        schedulers: list[Any] = (),
        generators: list[torch.Generator] = (),
        scaler: Any = None,
    ):
        self.optimizers, self.schedulers = list(optimizers), list(schedulers)
        self.generators, self.scaler = list(generators), scaler
        with torch.no_grad():
            self.tensors = [(t, t.detach().clone()) for t in self._tensors(module)]
            self.grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in module.parameters()]
        self.metrics = [(m, copy.deepcopy(dict(m.metric_state)), _metric_counters(m)) for m in _metric_modules(module)]
        self.training = [(m, m.training) for m in module.modules()]
        self.opt_states = [copy.deepcopy(opt.state_dict()) for opt in self.optimizers]
        self.sched_states = [copy.deepcopy(s.state_dict()) for s in self.schedulers]
        self.scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
        self.gen_states = [g.get_state() for g in self.generators]
        self.torch_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        self.numpy_rng = np.random.get_state()
        self.python_rng = random.getstate()

    @staticmethod
    def _tensors(module: torch.nn.Module) -> list[torch.Tensor]:
        return [*module.parameters(), *module.buffers()]

    def restore(self) -> None:
        """Put back every captured state (idempotent)."""
        with torch.no_grad():
            for t, saved in self.tensors:
                t.copy_(saved)
            for p, g in self.grads:
                p.grad = None if g is None else g.clone()
        for m, states, counters in self.metrics:
            for k, v in states.items():
                setattr(m, k, copy.deepcopy(v))
            _metric_counters(m, counters)
        for m, mode in self.training:
            m.training = mode
        for opt, state in zip(self.optimizers, self.opt_states):
            # load_state_dict builds new group dicts; copy them into the old ones so that anything
            # holding a reference to ``opt.param_groups`` or to a group keeps seeing the live values.
            groups, dicts = opt.param_groups, list(opt.param_groups)
            opt.load_state_dict(copy.deepcopy(state))
            for old, new in zip(dicts, opt.param_groups):
                old.clear()
                old.update(new)
            groups[:] = dicts
            opt.param_groups = groups
        for sched, state in zip(self.schedulers, self.sched_states):
            sched.load_state_dict(copy.deepcopy(state))
        if self.scaler is not None:
            self.scaler.load_state_dict(copy.deepcopy(self.scaler_state))
        for g, state in zip(self.generators, self.gen_states):
            g.set_state(state)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        np.random.set_state(self.numpy_rng)
        random.setstate(self.python_rng)
