"""The range test leaves no trace: exact restore (also on NaN, exceptions, Ctrl+C), no files."""

from __future__ import annotations

import os
import random
import signal

import lightning.pytorch as L
import numpy as np
import pytest
import torch
import torchmetrics
from conftest import TinyModule, make_loader, make_trainer
from torch import nn
from torch.utils.data import DataLoader

from lr_plugins import LRFinder, find_lr


class NoisyModule(TinyModule):
    """Dropout (torch RNG), numpy and python RNG draws, a torchmetrics state and self.log."""

    def __init__(self, lr=0.1, optimizer="adam", nan_above=None, fail_at=None, fail_with=RuntimeError):
        super().__init__(lr=lr, optimizer=optimizer)
        self.drop = nn.Dropout(0.2)
        self.mean_loss = torchmetrics.MeanMetric()
        self.nan_above, self.fail_at, self.fail_with = nan_above, fail_at, fail_with
        self.calls = 0
        self.draws: list[tuple[float, float]] = []

    def forward(self, x):
        return self.head(self.drop(torch.tanh(self.body(x))))

    def training_step(self, batch, batch_idx):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise self.fail_with("boom")
        self.draws.append((float(np.random.rand()), random.random()))
        loss = super().training_step(batch, batch_idx)
        self.mean_loss.update(loss.detach())
        self.log("train_loss", loss)
        if self.nan_above is not None and self.trainer.optimizers[0].param_groups[0]["lr"] > self.nan_above:
            return loss * float("nan")
        return loss


def shuffled_loader(seed=0):
    base = make_loader(n=96, batch_size=8, seed=seed)
    return DataLoader(base.dataset, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(123))


class StateProbe(L.Callback):
    """Captures everything the finder must leave alone, at a given hook."""

    def __init__(self, hook="on_train_start"):
        self.hook = hook
        self.states: list[dict] = []
        setattr(self, hook, self._capture)

    def _capture(self, trainer, pl_module):
        if trainer.train_dataloader is None:
            trainer.fit_loop.setup_data()  # as the fit loop does; setting up may itself draw from the loader
        opt = trainer.optimizers[0]
        self.states.append(
            {
                "params": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
                "grads": [None if p.grad is None else p.grad.clone() for p in pl_module.parameters()],
                "opt": _clone(opt.state_dict()),
                "groups": [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups],
                "torch_rng": torch.get_rng_state(),
                "np_rng": np.random.get_state()[1].copy(),
                "py_rng": random.getstate(),
                "global_step": trainer.global_step,
                "loop": _clone(trainer.fit_loop.state_dict()),
                "metric": (pl_module.mean_loss.mean_value.clone(), pl_module.mean_loss.weight.clone()),
                "training": pl_module.training,
                "loader_gen": trainer.train_dataloader.generator.get_state() if trainer.train_dataloader is not None else None,
            }
        )


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj


def assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def fit(tmp_path, callbacks, module, epochs=2, **kw):
    L.seed_everything(7, verbose=False)
    np.random.seed(7)
    random.seed(7)
    trainer = make_trainer(tmp_path, callbacks, max_epochs=epochs, **kw)
    trainer.fit(module, shuffled_loader())
    return trainer


def test_training_after_the_test_is_bit_identical_to_training_without_it(tmp_path):
    L.seed_everything(7, verbose=False)
    ref_module = NoisyModule()
    init = {k: v.clone() for k, v in ref_module.state_dict().items()}
    ref_probe = StateProbe()
    fit(tmp_path, [ref_probe], ref_module)

    module = NoisyModule()
    module.load_state_dict(init)
    probe_before, probe_after = StateProbe("on_fit_start"), StateProbe()
    finder = LRFinder(num_steps=30, min_lr=1e-4, max_lr=1.0, apply=False)
    fit(tmp_path, [probe_before, finder, probe_after], module)

    assert finder.result is not None and len(finder.result.lrs) >= 10
    assert module.calls > ref_module.calls  # the test really ran training steps
    # The state at train start equals the state without the test, and so does the whole run.
    assert_same(probe_after.states[0], ref_probe.states[0])
    assert_same(module.state_dict(), ref_module.state_dict())
    finder_draws = module.calls - ref_module.calls
    assert module.draws[finder_draws:] == ref_module.draws


def test_restore_after_non_finite_loss(tmp_path):
    module = NoisyModule(optimizer="sgd", nan_above=0.05)
    before, after = StateProbe("on_fit_start"), StateProbe("on_train_start")
    finder = LRFinder(num_steps=40, min_lr=1e-4, max_lr=10.0, apply=False)
    fit(tmp_path, [before, finder, after], module, epochs=1)
    r = finder.result
    assert r.stop_reason == "non-finite"
    assert max(r.lrs) <= 0.05 and all(np.isfinite(r.losses))
    keys = ("params", "grads", "opt", "groups", "torch_rng", "np_rng", "py_rng", "global_step", "loop", "metric", "training")
    assert_same({k: before.states[0][k] for k in keys}, {k: after.states[0][k] for k in keys})


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_restore_when_interrupted(tmp_path, exc):
    module = NoisyModule(fail_at=12, fail_with=exc)
    before = StateProbe("on_fit_start")
    finder = LRFinder(num_steps=30, apply=False)
    handler = signal.getsignal(signal.SIGINT)
    L.seed_everything(7, verbose=False)
    trainer = make_trainer(tmp_path, [before, finder], max_epochs=1)
    try:
        with pytest.raises(SystemExit if exc is KeyboardInterrupt else RuntimeError):
            trainer.fit(module, shuffled_loader())
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after a Ctrl+C
    assert module.calls == 12 and finder.result is None
    now = StateProbe("x")
    trainer.train_dataloader  # noqa: B018 - still set up
    now._capture(trainer, module)
    for key in ("params", "grads", "opt", "groups", "torch_rng", "np_rng", "py_rng", "global_step", "metric", "loader_gen"):
        assert_same(before.states[0][key], now.states[0][key], key)


def test_no_file_left_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = lambda: sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))  # noqa: E731
    before = listing()
    module = NoisyModule()
    finder = LRFinder(num_steps=20, min_lr=1e-4, max_lr=1.0)
    fit(tmp_path, [finder], module, epochs=1)
    result = find_lr(NoisyModule(), train_dataloaders=shuffled_loader(), num_steps=20, min_lr=1e-4, max_lr=1.0)
    assert len(result.lrs) > 5 and finder.result is not None
    assert listing() == before
    assert not any(n.startswith(".lr_find") for n in os.listdir(tmp_path))


def test_find_lr_leaves_the_model_unchanged():
    module = NoisyModule()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    result = find_lr(module, train_dataloaders=shuffled_loader(), num_steps=25, min_lr=1e-4, max_lr=1.0)
    assert len(result.lrs) > 10
    assert_same(module.state_dict(), state)


def test_mid_training_run_is_not_cut_short(tmp_path):
    """A second fit continues at global_step > 0; the EMA and best loss use the test's own count."""
    module = NoisyModule(optimizer="sgd", lr=0.05)
    finder = LRFinder(num_steps=40, min_lr=1e-5, max_lr=1.0, apply=False)
    probe = StateProbe("on_train_start")
    trainer = fit(tmp_path, [finder, probe], module, epochs=1)
    first_steps = trainer.global_step
    assert first_steps == 12
    trainer.fit_loop.max_epochs = 2
    trainer.fit(module, shuffled_loader())
    r = finder.result
    assert r.diagnostics["global_step"] == first_steps
    assert len(r.lrs) >= 30  # Lightning's finder stops after one step here (#4846)
    assert r.ema[0] == pytest.approx(r.losses[0])  # no half-size first value (#14167)
    assert probe.states[1]["global_step"] == first_steps
    assert trainer.global_step == 2 * first_steps


def test_the_modules_own_log_attributes_are_put_back_exactly(tmp_path):
    """A module that set its own ``self.log`` / ``self.log_dict`` instance attributes keeps them (the
    test silences logging while it runs, then restores exactly what was there)."""

    class OwnLog(TinyModule):
        def __init__(self):
            super().__init__()
            self.records: list[str] = []
            self.log = lambda name, value, **kw: self.records.append(name)

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("train_loss", loss)
            return loss

    module = OwnLog()
    own_log = module.log
    assert "log" in vars(module) and "log_dict" not in vars(module)
    finder = LRFinder(min_lr=1e-4, max_lr=1.0, num_steps=10, apply=False, verbose=False)
    make_trainer(tmp_path, [finder], max_epochs=1).fit(module, make_loader())
    assert vars(module)["log"] is own_log and "log_dict" not in vars(module)
    assert module.records == ["train_loss"] * 8  # the 8 training steps log through it, the 10 test steps do not
