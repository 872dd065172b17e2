"""Resume: exact for every schedule class, and a malformed schedule state refused before any step.

Every schedule class of the package (found by walking ``lr_plugins``, not listed by hand) is
stopped at several steps (mid-warmup, mid-cycle, mid-epoch, an epoch end), resumed from the
checkpoint with fresh callbacks, module and logger, and must log (and use) a bit-identical LR
and momentum sequence to the uninterrupted fit.
"""

from __future__ import annotations

import inspect
import math
import warnings

import lightning.pytorch as L
import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.loggers import Logger
from test_callback import StepRecorder, fit

import lr_plugins
import lr_plugins.callback
from lr_plugins import SGDR, Constant
from lr_plugins.callback import ScheduleCallback


def schedule_classes() -> list[type]:
    """Every public schedule callback class: the package's exports and lr_plugins.callback's classes."""
    found = [getattr(lr_plugins, n) for n in lr_plugins.__all__] + list(vars(lr_plugins.callback).values())
    classes = {c for c in found if inspect.isclass(c) and issubclass(c, ScheduleCallback) and c is not ScheduleCallback}
    return sorted(classes, key=lambda c: c.__name__)


# What a 40-step fit (8 steps per epoch) needs to show each family's shape. Every schedule gets a
# 0.75-epoch (6-step) warmup unless listed; a new class without an entry is built with that alone.
ARGS: dict[str, dict] = {
    "WarmupCosine": dict(min_lr=0.001, hold=0.5),
    "SGDR": dict(cycle_length=1.25, cycle_mult=1.5, cycle_decay=0.8, min_lr=0.001),
    "CyclicLR": dict(step_size=0.75, min_lr=0.01, mode="triangular2"),
    "OneCycle": dict(three_phase=True, warmup=0),  # its own rise is the warmup
    "StepDecay": dict(step_size=1.5, gamma=0.5),
    "ExponentialDecay": dict(rate=0.5),
    "InverseTimeDecay": dict(rate=0.5, staircase=True),
    "Constant": dict(),
    # no validation here, so the rule reads a training metric (the LR itself) at epoch ends; its own
    # resume is tested with validation in test_schedules_plateau.py
    "Plateau": dict(monitor="lr-Adam/pg1"),
    "ScheduleFree": dict(replace_optimizer=True),  # Adam -> AdamWScheduleFree
}


def build(cls: type) -> ScheduleCallback:
    # max_lr=None: the peak is the optimizer's LR, which must also come back exactly on resume.
    return cls(**{"warmup": 0.75, **ARGS.get(cls.__name__, {})})


class MemoryLogger(Logger):
    """A real Lightning logger that keeps every logged point, as float64, in memory."""

    def __init__(self):
        super().__init__()
        self.points: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self):
        return "memory"

    @property
    def version(self):
        return 0

    def log_metrics(self, metrics, step=None):
        self.points.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def series(self) -> dict[str, list[tuple[int, float]]]:
        out: dict[str, list[tuple[int, float]]] = {}
        for step, metrics in self.points:
            for k, v in metrics.items():
                out.setdefault(k, []).append((step, v))
        return out


class SaveAt(L.Callback):
    """Saves a checkpoint right after the given optimizer steps (where ModelCheckpoint would)."""

    def __init__(self, dirpath, steps):
        self.dirpath, self.steps = dirpath, set(steps)

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step in self.steps:
            trainer.save_checkpoint(self.dirpath / f"step={trainer.global_step}.ckpt")


def module():
    return TinyModule(lr=0.1, optimizer="adam", groups=(0.1, 0.03))  # Adam: betas[0] is the momentum


# Stops: 3 = mid-warmup and mid-epoch; 13 = mid-epoch, mid-cycle (SGDR's first cycle is steps 6..15);
# 24 = the end of epoch 3.
STOPS = (3, 13, 24)


def test_the_class_list_is_derived_from_the_package():
    names = [c.__name__ for c in schedule_classes()]
    assert len(names) >= 8 and {"WarmupCosine", "SGDR", "OneCycle", "Constant"} <= set(names)


@pytest.mark.parametrize("cls", schedule_classes(), ids=lambda c: c.__name__)
def test_kill_and_resume_is_bit_identical_for_every_schedule_class(tmp_path, cls):
    logger, rec = MemoryLogger(), LRRecorder()
    trainer = make_trainer(tmp_path, [build(cls), rec, SaveAt(tmp_path, STOPS)], max_epochs=5, logger=logger,
                           log_every_n_steps=1)
    torch.manual_seed(0)
    trainer.fit(module(), make_loader())
    full = logger.series()
    opt = "AdamWScheduleFree" if cls.__name__ == "ScheduleFree" else "Adam"  # the one that swaps the optimizer
    assert sorted(full) == [f"lr-{opt}/pg1", f"lr-{opt}/pg1-momentum", f"lr-{opt}/pg2", f"lr-{opt}/pg2-momentum"]
    assert all([s for s, _ in v] == list(range(40)) for v in full.values())
    assert len({v for _, v in full[f"lr-{opt}/pg1"]}) > 3, "the schedule should change the LR in this test"
    for k in STOPS:
        logger_k, rec_k = MemoryLogger(), LRRecorder()
        trainer = make_trainer(tmp_path / f"r{k}", [build(cls), rec_k], max_epochs=5, logger=logger_k,
                               log_every_n_steps=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.manual_seed(0)
            trainer.fit(module(), make_loader(), ckpt_path=tmp_path / f"step={k}.ckpt")
        assert not [w for w in caught if "changed LR schedule" in str(w.message)], k
        resumed = logger_k.series()
        assert sorted(resumed) == sorted(full)
        for tag, series in full.items():
            assert resumed[tag] == series[k:], (k, tag)  # as logged: same steps, bit-identical values
        assert rec.lrs[:k] + rec_k.lrs == rec.lrs, k  # as used by the optimizer
        assert rec.momenta[:k] + rec_k.momenta == rec.momenta, k


def test_resume_after_max_steps_stop_is_bit_identical(tmp_path):
    """Stop at step 13 (mid-epoch, mid-cycle) with max_steps, save, resume.

    Lightning counts a checkpoint saved after a ``max_steps`` stop as the end of its epoch, so the
    resumed fit skips the rest of that epoch (steps 16..39 become 13..36); every step still gets
    the LR of its global step.
    """
    make = lambda: SGDR(max_lr=0.2, cycle_length=1.5, cycle_decay=0.7, warmup=0.25)  # noqa: E731
    _, full = fit(tmp_path / "full", make(), max_epochs=5)
    trainer, first = fit(tmp_path / "a", make(), max_epochs=5, max_steps=13)
    path = tmp_path / "stop.ckpt"
    trainer.save_checkpoint(path)
    rec = StepRecorder()
    trainer = make_trainer(tmp_path / "b", [make(), rec], max_epochs=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyModule(), make_loader(), ckpt_path=path)
    assert not [w for w in caught if "changed LR schedule" in str(w.message)]
    assert first.steps + rec.steps == list(range(13 + 24))
    assert first.lrs + rec.lrs == full.lrs[: 13 + 24]


def test_resume_with_a_changed_schedule_warns(tmp_path):
    trainer, _ = fit(tmp_path / "a", SGDR(max_lr=0.2, cycle_length=2), max_epochs=5, max_steps=12)
    path = tmp_path / "stop.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=True)["callbacks"]["lr_plugins.schedule"]
    assert state["config"]["cycle_length"] == 2.0
    assert "log_lr" not in state["config"] and "replace_schedulers" not in state["config"]
    changed = SGDR(max_lr=0.2, cycle_length=3)
    rec = StepRecorder()
    trainer = make_trainer(tmp_path / "b", [changed, rec], max_epochs=5)
    with pytest.warns(UserWarning, match=r"changed LR schedule \(config: .*'cycle_length': 2.0.*'cycle_length': 3.0"):
        trainer.fit(TinyModule(), make_loader(), ckpt_path=path)
    assert rec.steps[0] == 12 and rec.lr0 == changed.preview(40, 8).tolist()[12 : 12 + len(rec.lr0)]


def test_switching_the_callback_options_on_resume_is_not_a_changed_schedule(tmp_path):
    trainer, _ = fit(tmp_path / "a", SGDR(max_lr=0.2, cycle_length=2), max_epochs=5, max_steps=12)
    trainer.save_checkpoint(tmp_path / "stop.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(tmp_path / "b", SGDR(max_lr=0.2, cycle_length=2, log_lr=False, replace_schedulers=True), max_epochs=5,
            ckpt_path=tmp_path / "stop.ckpt")
    assert not [w for w in caught if "changed LR schedule" in str(w.message)]


# ---------------------------------------------------------------------- malformed state (issue 12.9)
GOOD = {"config": {"class": "SGDR", "cycle_length": 2.0}, "base_lrs": [[0.1]], "steps_per_epoch": 8.0, "total_steps": 40.0}

MALFORMED = [
    (5, "it must be a dict with keys config, base_lrs, steps_per_epoch, total_steps, not a int"),
    ([["config", {}]], "it must be a dict with keys config, base_lrs, steps_per_epoch, total_steps, not a list"),
    (None, "it must be a dict with keys config, base_lrs, steps_per_epoch, total_steps, not a NoneType"),
    ({}, "it lacks the key(s) config, base_lrs, steps_per_epoch, total_steps"),
    ({k: v for k, v in GOOD.items() if k != "base_lrs"}, "it lacks the key(s) base_lrs"),
    ({**GOOD, "config": "SGDR"}, "'config' must be a dict with a 'class' name, not 'SGDR'"),
    ({**GOOD, "config": {"cycle_length": 2.0}}, "'config' must be a dict with a 'class' name"),
    ({**GOOD, "base_lrs": 0.1}, "'base_lrs' must be a non-empty list of non-empty lists"),
    ({**GOOD, "base_lrs": [[]]}, "'base_lrs' must be a non-empty list of non-empty lists"),
    ({**GOOD, "base_lrs": [[0.1, "a"]]}, "'base_lrs' must hold finite LRs > 0, not 'a'"),
    ({**GOOD, "base_lrs": [[math.nan]]}, "'base_lrs' must hold finite LRs > 0, not nan"),
    ({**GOOD, "steps_per_epoch": "8"}, "'steps_per_epoch' must be a number > 0 (inf for an unsized loader), not '8'"),
    ({**GOOD, "steps_per_epoch": 0}, "'steps_per_epoch' must be a number > 0"),
    ({**GOOD, "steps_per_epoch": True}, "'steps_per_epoch' must be a number > 0"),
    ({**GOOD, "total_steps": None}, "'total_steps' must be a number >= 0 (inf for infinite training), not None"),
    ({**GOOD, "total_steps": -1.0}, "'total_steps' must be a number >= 0"),
    # the optional keys of issue 17 (a re-planned length, optimizer names, manual optimization's steps)
    ({**GOOD, "warp": {"anchor": 1}}, "'warp' must be a dict with keys anchor, at, rate, total, steps_per_epoch"),
    ({**GOOD, "warp": {"anchor": 1, "at": 1.0, "rate": -2.0, "total": 9.0, "steps_per_epoch": 8.0}},
     "'warp' 'rate' must be a finite number >= 0"),
    ({**GOOD, "warp": {"anchor": 1, "at": 1.0, "rate": 2.0, "total": 9.0, "steps_per_epoch": 0}},
     "'warp' 'steps_per_epoch' must be a finite number >= 0 ('total' may be inf, 'steps_per_epoch' > 0), not 0"),
    ({**GOOD, "optimizers": "SGD"}, "'optimizers' must be a list of optimizer class names, not 'SGD'"),
    ({**GOOD, "driven_steps": -1}, "'driven_steps' must be a whole number >= 0, not -1"),
]


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    trainer, _ = fit(tmp, SGDR(max_lr=0.2, cycle_length=2), max_epochs=5, max_steps=5)
    trainer.save_checkpoint(tmp / "real.ckpt")
    return torch.load(tmp / "real.ckpt", weights_only=True)


@pytest.mark.parametrize("state,problem", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_schedule_state_refused_before_any_step(tmp_path, saved_checkpoint, state, problem):
    checkpoint = {**saved_checkpoint, "lr_plugins.schedule": state}
    torch.save(checkpoint, tmp_path / "crafted.ckpt")
    rec = StepRecorder()
    trainer = make_trainer(tmp_path, [SGDR(max_lr=0.2, cycle_length=2), rec], max_epochs=5)
    with pytest.raises(ValueError) as info:
        trainer.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / "crafted.ckpt")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"checkpoint['lr_plugins.schedule'] is malformed: {problem}")
    assert "delete this key from the checkpoint" in msg
    assert rec.steps == []


def test_valid_crafted_state_and_absent_state_are_accepted(tmp_path, saved_checkpoint):
    torch.save({**saved_checkpoint, "lr_plugins.schedule": {**GOOD, "extra": 1}}, tmp_path / "ok.ckpt")
    with pytest.warns(UserWarning, match="changed LR schedule"):  # SGDR -> Constant only warns
        _, rec = fit(tmp_path / "a", Constant(max_lr=0.2), max_epochs=2, ckpt_path=tmp_path / "ok.ckpt")
    # A checkpoint saved after a max_steps stop counts as the end of its epoch: epoch 1 = steps 5..12.
    assert rec.steps == list(range(5, 13))
    absent = {k: v for k, v in saved_checkpoint.items() if k != "lr_plugins.schedule"}
    absent["callbacks"] = {k: v for k, v in absent["callbacks"].items() if k != "lr_plugins.schedule"}
    torch.save(absent, tmp_path / "absent.ckpt")  # e.g. a checkpoint written without a schedule
    sched = SGDR(max_lr=0.2, cycle_length=2)
    _, rec = fit(tmp_path / "b", sched, max_epochs=5, ckpt_path=tmp_path / "absent.ckpt")
    assert rec.steps == list(range(5, 37)) and rec.lr0 == sched.preview(40, 8).tolist()[5:37]
