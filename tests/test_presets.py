"""Every shipped schedule preset fits any job (issue 13 item 2).

Each ``lr_plugins/conf/schedule/*.yaml`` is composed with plain Hydra (``initialize_config_module``,
no app), instantiated with ``hydra.utils.instantiate`` and fitted on a tiny model with a real
Trainer, for optimizer LRs 1e-5 .. 1 and trainings from one step (``fast_dev_run``) to a few
epochs. The LR of every optimizer step stays in [0, peak] and equals ``preview`` of the same
preset with that peak. The default run takes one combination per preset; the whole matrix is
``slow``. The design's command ``lr-train schedule=sgdr schedule.cycle_length=10`` gives
10-epoch cycles (the sgdr preset counts in epochs; its default ``cycle_length: null`` is a
quarter of training).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from hydra import compose, initialize_config_module
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from lr_plugins.schedules import CURVES, SMITH_FLOOR, CommonArgs

PRESETS = sorted(p.name.removesuffix(".yaml") for p in files("lr_plugins.conf").joinpath("schedule").iterdir()
                 if p.name.endswith(".yaml"))
SHARED = tuple(CommonArgs.__optional_keys__)  # max_lr, min_lr, warmup, warmup_start_lr, unit
#: Keys that are lengths in ``unit``s: a preset that does not count in fractions leaves them 0 or null.
LENGTH_KEYS = ("warmup", "hold", "cycle_length", "step_size", "milestones")
LRS = [1e-5, 1e-3, 1.0]
#: Trainer lengths and the optimizer steps they give with 8 batches per epoch.
LENGTHS = {
    "1 epoch": ({"max_epochs": 1}, 8),
    "3 epochs": ({"max_epochs": 3}, 24),
    "3 steps": ({"max_steps": 3, "max_epochs": 5}, 3),
    "fast_dev_run": ({"fast_dev_run": True}, 1),
}
MATRIX = list(itertools.product(PRESETS, LRS, LENGTHS))
#: One combination per preset by default; together they cover every LR and every length.
FAST = [(p, LRS[i % len(LRS)], list(LENGTHS)[i % len(LENGTHS)]) for i, p in enumerate(PRESETS)]


@functools.cache
def preset(name: str, *overrides: str):
    """The composed ``schedule`` node of preset ``name`` (cached: composing costs ~0.3 s)."""
    with initialize_config_module(config_module="lr_plugins.conf", version_base="1.3"):
        return compose(overrides=[f"+schedule={name}", *overrides]).schedule


def test_every_registered_schedule_has_one_preset_and_every_preset_shares_the_keys():
    targets = {name: preset(name)._target_ for name in PRESETS}
    assert {t.removeprefix("lr_plugins.") for t in targets.values()} == set(CURVES)  # linear, polynomial: one class
    for name in PRESETS:
        cfg = preset(name)
        assert all(k in cfg for k in SHARED), name
        assert cfg.max_lr is None, name  # relative to the optimizer's LR
        # relative to the length of training: fractions of it, or no length of their own (sgdr: null)
        absolute = {k: cfg[k] for k in LENGTH_KEYS if cfg.get(k) not in (None, 0)}
        assert cfg.unit == "fraction" or not absolute, (name, cfg.unit, absolute)


#: What a preset needs from the job beyond the Trainer: the metric name TinyModule logs (the
#: plateau preset watches ``val/loss``, as lr-train and lightning-hydra-template log it).
JOB = {"plateau": ("schedule.monitor=val_loss",)}


def fit_preset(tmp_path, name: str, lr: float, length: str):
    trainer_kw, steps = LENGTHS[length]
    schedule = instantiate(preset(name, *JOB.get(name, ())))
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec], limit_val_batches=1, **trainer_kw)
    trainer.fit(TinyModule(lr=lr), make_loader(n=64, batch_size=8), make_loader(n=8, batch_size=8))
    return schedule, rec, steps


def check_fit(tmp_path, name, lr, length):
    schedule, rec, steps = fit_preset(tmp_path, name, lr, length)
    used = np.array([lrs[0] for lrs in rec.lrs])
    assert len(used) == steps == schedule.fit_total_steps
    assert np.all(used >= 0) and np.all(used <= lr * (1 + 1e-12)), (name, used)
    # The reference: the same preset with the optimizer's LR as its explicit peak, without a Trainer.
    ref = instantiate(preset(name, f"schedule.max_lr={lr!r}", *JOB.get(name, ()))).preview(steps, steps_per_epoch=8)
    np.testing.assert_allclose(used, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name,lr,length", FAST)
def test_preset_fits_a_job(tmp_path, name, lr, length):
    check_fit(tmp_path, name, lr, length)


@pytest.mark.slow
@pytest.mark.parametrize("name,lr,length", [m for m in MATRIX if m not in FAST])
def test_preset_fits_every_job(tmp_path, name, lr, length):
    check_fit(tmp_path, name, lr, length)


@pytest.mark.parametrize("length", ["1 epoch", "fast_dev_run"])
def test_default_preset_runs_one_epoch_and_fast_dev_run(tmp_path, length):
    """lr-train's default schedule with trainer.max_epochs=1 and fast_dev_run (issue 13)."""
    check_fit(tmp_path, "warmup_cosine", 0.1, length)


def test_presets_mean_what_their_comments_say():
    """In fractions of training, independent of its length: 40 and 400 steps give the same shape."""
    at = {name: instantiate(preset(name, "schedule.max_lr=1.0")) for name in PRESETS}
    for n in (40, 400):
        wc = at["warmup_cosine"].preview(n)
        assert wc[n // 20] == pytest.approx(1.0) and wc[n // 40] == pytest.approx(0.5)  # peak at 5%
        step = at["step"].preview(n)
        assert (step[n // 2 - 1], step[n // 2], step[3 * n // 4]) == pytest.approx((1.0, 0.1, 0.01))
        sgdr = at["sgdr"]
        assert sgdr.cycle_ends(n) == [n // 4 - 1, n // 2 - 1, 3 * n // 4 - 1, n - 1]  # 4 cycles
        clr = at["clr"].preview(n)
        assert clr[0] == pytest.approx(SMITH_FLOOR) and clr[n // 8] == pytest.approx(1.0)  # floor = peak / 4
        assert at["exponential"].lr_at(n, total_steps=n) == pytest.approx(np.exp(-4.6))
        assert at["inverse_time"].lr_at(n, total_steps=n) == pytest.approx(0.1)
        wsd = at["wsd"].preview(n)  # peak from 5% to 80%, then 1 - sqrt(p) to 0 over the last 20%
        assert wsd[n // 20] == wsd[4 * n // 5 - 1] == 1.0 and wsd[9 * n // 10] == pytest.approx(1 - 0.5**0.5)
        lin, poly = at["linear"].preview(n), at["polynomial"].preview(n)  # peak at 5%, then (1 - p)**power
        assert lin[n // 20] == poly[n // 20] == 1.0 and at["linear"].lr_at(n, total_steps=n) == 0.0
        p = (n - 1 - n // 20) / (n - n // 20)
        assert (lin[-1], poly[-1]) == pytest.approx((1 - p, (1 - p) ** 0.9))
        isq = at["inverse_sqrt"].preview(n)  # timescale = warmup: half the peak 3 warmups after it
        assert isq[n // 20] == 1.0 and isq[4 * n // 20] == pytest.approx(0.5)
        one = at["onecycle"].preview(n)
        assert one.argmax() == round(0.3 * n) - 1 and one[0] == pytest.approx(1 / 25)


@pytest.mark.parametrize("name,override,words", [
    ("clr", "schedule.step_size=4", ["step_size=4.0 is not allowed with unit='fraction'", "unit='epoch'"]),
    ("warmup_cosine", "schedule.warmup=2", ["warmup=2.0 is not allowed with unit='fraction'"]),
    ("step", "schedule.milestones=[10,15]", ["milestones[0]=10.0 is not allowed with unit='fraction'"]),
])
def test_epoch_lengths_with_a_fraction_preset_are_refused_clearly(name, override, words):
    with pytest.raises(InstantiationException) as info:  # Hydra wraps the class's ValueError
        instantiate(preset(name, override))
    assert isinstance(info.value.__cause__, ValueError)
    msg = str(info.value)
    assert all(w in msg for w in words), msg


def test_epoch_lengths_work_with_unit_epoch():
    s = instantiate(preset("clr", "schedule.step_size=2", "schedule.unit=epoch", "schedule.max_lr=0.2"))
    assert s.cycle_ends(81, steps_per_epoch=10) == [40, 80]  # troughs every 2 * 2 epochs


def sgdr_reference(steps: int, steps_per_epoch: float, t0: float, peak: float = 1.0) -> np.ndarray:
    """Eq. 5 of the SGDR paper with T_mult = 1 and min_lr = 0, T_cur in (fractional) epochs."""
    t_cur = np.arange(steps) / steps_per_epoch % t0
    return peak * (1 + np.cos(np.pi * t_cur / t0)) / 2


def test_sgdr_preset_cycle_length_10_gives_10_epoch_cycles():
    """``schedule=sgdr schedule.cycle_length=10``: T_0 = 10 epochs, as in the paper, at any steps per epoch."""
    s = instantiate(preset("sgdr", "schedule.cycle_length=10"))
    assert (s.unit, s.cycle_length, s.needs_total) == ("epoch", 10.0, False)
    for spe in (7, 10):
        assert s.cycle_ends(30 * spe, steps_per_epoch=spe) == [10 * spe - 1, 20 * spe - 1, 30 * spe - 1]
        np.testing.assert_allclose(s.preview(30 * spe, steps_per_epoch=spe), sgdr_reference(30 * spe, spe, 10.0),
                                   rtol=1e-12, atol=1e-15)
        assert s.lr_at(10_000 * spe, steps_per_epoch=spe) == 1.0  # no end needed: cycles go on


def test_lr_train_config_composes_sgdr_cycle_length_10():
    """The same override on lr-train's own config (its defaults, its search path)."""
    from lr_plugins.app.preview import compose_config

    cfg = compose_config(["schedule=sgdr", "schedule.cycle_length=10", "trainer.max_epochs=30"])
    s = instantiate(cfg.schedule)
    assert type(s).__name__ == "SGDR" and (s.unit, s.cycle_length) == ("epoch", 10.0)
    assert s.cycle_ends(30 * 57, steps_per_epoch=57) == [569, 1139, 1709]


@pytest.mark.slow
def test_lr_train_sgdr_cycle_length_10_trains_with_10_epoch_cycles(tmp_path):
    """The design contract's command, run for real: 20 epochs of 2 steps, restarts at epochs 10 and 20."""
    cmd = [sys.executable, "-m", "lr_plugins.app.train", "schedule=sgdr", "schedule.cycle_length=10", "data=digits",
           "model=mlp", "trainer.max_epochs=20", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
           "trainer.enable_progress_bar=false", "trainer.enable_checkpointing=false"]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = tmp_path.glob("outputs/*/*/result.json")
    history = json.loads(result.read_text())["history"]
    peak = history["lr"][0]
    expected = sgdr_reference(40, 2, 10.0, peak)[history["step"]]
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-6)
    assert min(history["lr"]) < 0.01 * peak and math.isclose(history["lr"][history["step"].index(20)], peak)


@pytest.mark.parametrize("name,why", [("sgdr", "cycle_length=None makes the first cycle 1/4 of it"),
                                      ("clr", "unit='fraction' counts in fractions of it")])
def test_presets_that_follow_the_length_refuse_infinite_training_before_any_step(tmp_path, name, why):
    schedule = instantiate(preset(name))
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec], max_epochs=-1)
    with pytest.raises(ValueError, match=rf"{type(schedule).__name__} needs the total number of optimizer steps \({why}\)"):
        trainer.fit(TinyModule(lr=0.1), make_loader())
    assert rec.lrs == []


def test_snapshots_of_the_sgdr_preset_fall_on_its_cycle_ends(tmp_path):
    """SnapshotEnsemble with the SGDR preset (cycle_length null): one snapshot per quarter of training."""
    from lr_plugins import SnapshotEnsemble

    schedule, snap = instantiate(preset("sgdr")), SnapshotEnsemble(dirpath=tmp_path / "snaps")
    trainer = make_trainer(tmp_path, [schedule, snap], max_epochs=3)
    trainer.fit(TinyModule(lr=0.1), make_loader())
    assert [r["step"] for r in snap.records] == schedule.cycle_ends(24, 8) == [5, 11, 17, 23]
