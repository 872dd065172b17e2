"""The schedule callbacks log exactly what ``LearningRateMonitor(logging_interval="step", log_momentum=True)`` logs.

Side by side on real TensorBoard event files (read back with tensorboard's EventAccumulator):
the same fit once with only our logging and once with our logging off and Lightning's monitor
on writes the same series (tags, steps, values) under any ``log_every_n_steps`` and gradient
accumulation; with both present no series has a point twice, and ``log_lr=False`` writes nothing.
Tag names are also checked against the monitor's own naming code for several optimizers.
"""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
from conftest import TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from lr_plugins import SGDR, CyclicLR, OneCycle
from lr_plugins.lr_logging import lr_tags, momentum_tags


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series under ``logdir``: tag -> [(step, value), ...] in file order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(logdir.rglob("events.out.tfevents.*"))
    assert files, f"no event file under {logdir}"
    out: dict[str, list[tuple[int, float]]] = {}
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def lr_series(scalars: dict) -> dict:
    return {t: v for t, v in scalars.items() if t.startswith("lr-")}


class Adagrad(TinyModule):
    def configure_optimizers(self):
        return torch.optim.Adagrad(self.parameters(), lr=self.lr)


class NamedGroups(TinyModule):
    def configure_optimizers(self):
        return torch.optim.SGD(
            [{"params": self.body.parameters(), "name": "body"}, {"params": self.head.parameters(), "lr": 0.03}],
            lr=0.1, momentum=0.9,
        )


MODULES = {
    "sgd": lambda: TinyModule(),
    "sgd-2groups": lambda: TinyModule(groups=(0.1, 0.03)),
    "sgd-named": lambda: NamedGroups(),
    "adam": lambda: TinyModule(optimizer="adam"),
    "adagrad": lambda: Adagrad(),
}


def run(tmp_path, name, schedule, module, callbacks=(), **kwargs):
    trainer = make_trainer(tmp_path, [schedule, *callbacks], logger=TensorBoardLogger(tmp_path, name=name), **kwargs)
    torch.manual_seed(0)
    trainer.fit(module, make_loader(n=80))  # 10 batches per epoch
    return trainer, lr_series(read_scalars(tmp_path / name))


@pytest.mark.parametrize(
    "module,make,kwargs",
    [
        ("sgd", lambda **kw: CyclicLR(max_lr=0.2, min_lr=0.02, step_size=5, unit="step", **kw), dict(log_every_n_steps=1)),
        ("sgd-2groups", lambda **kw: OneCycle(**kw), dict(log_every_n_steps=3)),
        ("sgd-named", lambda **kw: SGDR(cycle_length=0.7, warmup=0.3, **kw), dict(log_every_n_steps=7)),
        ("adam", lambda **kw: OneCycle(max_lr=0.01, **kw), dict(log_every_n_steps=4, accumulate_grad_batches=3)),
        ("adagrad", lambda **kw: SGDR(max_lr=0.1, cycle_length=1, **kw), dict(log_every_n_steps=2, accumulate_grad_batches=2)),
        ("sgd", lambda **kw: SGDR(max_lr=0.1, cycle_length=1, **kw), dict()),  # Lightning's default: every 50 steps
    ],
    ids=["clr-every-step", "onecycle-2groups-n3", "sgdr-named-n7", "adam-n4-acc3", "adagrad-n2-acc2", "default-n50"],
)
def test_same_series_as_learning_rate_monitor(tmp_path, module, make, kwargs):
    kwargs.setdefault("max_epochs", 6)
    ours_trainer, ours = run(tmp_path, "ours", make(), MODULES[module](), **kwargs)
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True)
    ref_trainer, ref = run(tmp_path, "monitor", make(log_lr=False), MODULES[module](), [monitor], **kwargs)
    assert ref, "LearningRateMonitor logged nothing"
    assert sorted(ours) == sorted(ref)
    for tag in ref:
        assert ours[tag] == ref[tag], tag
    # The same values reach callback_metrics (what ModelCheckpoint / EarlyStopping could monitor).
    for tag in ref:
        assert float(ours_trainer.callback_metrics[tag]) == float(ref_trainer.callback_metrics[tag])
    # Steps: the monitor's rule, (optimizer steps done + 1) % log_every_n_steps == 0, so nothing extra.
    n = kwargs.get("log_every_n_steps", 50)
    steps = {s for series in ours.values() for s, _ in series}
    assert steps and all((s + 1) % n == 0 for s in steps)


@pytest.mark.parametrize("log_momentum", [False, True])
def test_with_a_monitor_too_no_series_is_written_twice(tmp_path, log_momentum):
    make = lambda: OneCycle(max_lr=0.2)  # noqa: E731  (cycles momentum)
    _, alone = run(tmp_path, "alone", make(), TinyModule(groups=(0.1, 0.03)), max_epochs=3, log_every_n_steps=2)
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=log_momentum)
    _, both = run(tmp_path, "both", make(), TinyModule(groups=(0.1, 0.03)), [monitor], max_epochs=3,
                  log_every_n_steps=2)
    assert sorted(both) == sorted(alone) == [
        "lr-SGD/pg1", "lr-SGD/pg1-momentum", "lr-SGD/pg2", "lr-SGD/pg2-momentum"
    ]
    for tag, series in both.items():
        steps = [s for s, _ in series]
        assert len(steps) == len(set(steps)), f"{tag} has points logged twice"
        assert series == alone[tag], tag


class LogsLoss(TinyModule):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss)
        return loss


def test_log_false_writes_no_lr_series(tmp_path):
    trainer = make_trainer(tmp_path, [OneCycle(max_lr=0.2, log_lr=False)], max_epochs=2, log_every_n_steps=1,
                           logger=TensorBoardLogger(tmp_path, name="off"))
    trainer.fit(LogsLoss(), make_loader(n=80))
    scalars = read_scalars(tmp_path / "off")
    assert [s for s, _ in scalars["train_loss"]] == list(range(20))  # the logger works ...
    assert sorted(scalars) == ["epoch", "train_loss"]  # ... and holds no LR or momentum series
    assert not [k for k in trainer.callback_metrics if k.startswith("lr-")]


def test_momentum_tags_are_the_monitors(tmp_path):
    """Regression: momentum used to be logged as ``momentum-SGD``; the monitor's tag is ``lr-SGD-momentum``."""
    _, scalars = run(tmp_path, "tags", SGDR(max_lr=0.1, cycle_length=1), TinyModule(), max_epochs=1, log_every_n_steps=1)
    assert sorted(scalars) == ["lr-SGD", "lr-SGD-momentum"]
    assert [v for _, v in scalars["lr-SGD-momentum"]] == pytest.approx([0.9] * 10)


def test_a_param_group_added_mid_fit_is_logged_as_the_monitor_logs_it(tmp_path):
    """BackboneFinetuning adds the backbone's group at epoch 1: lr-SGD becomes lr-SGD/pg1 and lr-SGD/pg2 appears."""
    from lightning.pytorch.callbacks import BackboneFinetuning
    from test_callback_lifecycle import WithBackbone

    def finetuning():
        return BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_ratio_lr=0.1)

    make = lambda **kw: SGDR(max_lr=0.1, cycle_length=1, **kw)  # noqa: E731
    _, ours = run(tmp_path, "ours", make(), WithBackbone(), [finetuning()], max_epochs=3, log_every_n_steps=1)
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True)
    _, ref = run(tmp_path, "monitor", make(log_lr=False), WithBackbone(), [finetuning(), monitor], max_epochs=3,
                 log_every_n_steps=1)
    assert sorted(ref) == ["lr-SGD", "lr-SGD-momentum", "lr-SGD/pg1", "lr-SGD/pg1-momentum", "lr-SGD/pg2",
                           "lr-SGD/pg2-momentum"]
    assert sorted(ours) == sorted(ref)
    for tag in ref:
        assert ours[tag] == ref[tag], tag
    assert [s for s, _ in ours["lr-SGD/pg2"]] == list(range(10, 30))  # from the epoch it was added on


def _monitor_names(optimizers) -> list[list[str]]:
    """Tag names from LearningRateMonitor's own naming code, for optimizers without schedulers."""
    from collections import defaultdict

    names, _ = LearningRateMonitor()._find_names_from_optimizers(optimizers, [], defaultdict(int))
    return names


def _p():
    return [torch.nn.Parameter(torch.zeros(1))]


@pytest.mark.parametrize(
    "make",
    [
        lambda: [torch.optim.SGD(_p(), lr=0.1)],
        lambda: [torch.optim.SGD([{"params": _p()}, {"params": _p()}], lr=0.1)],
        lambda: [torch.optim.SGD([{"params": _p(), "name": "enc"}, {"params": _p()}, {"params": _p(), "name": "dec"}], lr=0.1)],
        lambda: [torch.optim.Adam([{"params": _p(), "name": "only"}])],
        lambda: [torch.optim.SGD(_p(), lr=0.1), torch.optim.Adam(_p()), torch.optim.SGD(_p(), lr=0.1), torch.optim.SGD(_p(), lr=0.1)],
        lambda: [torch.optim.AdamW([{"params": _p()}, {"params": _p()}]), torch.optim.AdamW(_p())],
    ],
    ids=["one", "two-groups", "named-groups", "one-named", "four-optimizers", "adamw-pair"],
)
def test_tag_names_match_the_monitors_naming_code(make):
    optimizers = make()
    ref = _monitor_names(optimizers)
    assert lr_tags(optimizers) == ref
    assert momentum_tags(optimizers) == [[f"{t}-momentum" for t in tags] for tags in ref]


def test_duplicate_group_names_refused_before_the_first_step(tmp_path):
    class Dup(TinyModule):
        def configure_optimizers(self):
            return torch.optim.SGD([{"params": self.body.parameters(), "name": "x"},
                                    {"params": self.head.parameters(), "name": "x"}], lr=0.1)

    trainer = make_trainer(tmp_path, [SGDR(cycle_length=1)], max_epochs=1)
    with pytest.raises(ValueError, match=r"param group names \['x', 'x'\] of SGD are not allowed for logging.*log_lr=False"):
        trainer.fit(Dup(), make_loader())
    assert trainer.global_step == 0
    trainer = make_trainer(tmp_path, [SGDR(cycle_length=1, log_lr=False)], max_epochs=1)
    trainer.fit(Dup(), make_loader())
    assert trainer.global_step == 8


@pytest.mark.parametrize("name", ["lr_plugins.lr_logging", "lr_plugins.takeover", "lr_plugins.schedule_state",
                                  "lr_plugins.distributed"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
