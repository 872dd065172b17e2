"""Every shipped schedule preset fits any job (issue 13 item 2).

Each ``lr_plugins/conf/schedule/*.yaml`` is composed with plain Hydra (``initialize_config_module``,
no app), instantiated with ``hydra.utils.instantiate`` and fitted on a tiny model with a real
Trainer, for optimizer LRs 1e-5 .. 1 and trainings from one step (``fast_dev_run``) to a few
epochs. The LR of every optimizer step stays in [0, peak] and equals ``preview`` of the same
preset with that peak. The default run takes one combination per preset; the whole matrix is
``slow``.
"""

from __future__ import annotations

import itertools
from importlib.resources import files

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lr_plugins.schedules import CURVES, SMITH_FLOOR

PRESETS = sorted(p.name.removesuffix(".yaml") for p in files("lr_plugins.conf").joinpath("schedule").iterdir()
                 if p.name.endswith(".yaml"))
SHARED = ("max_lr", "min_lr", "warmup", "warmup_start_lr", "unit")
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


def preset(name: str, *overrides: str):
    with initialize_config_module(config_module="lr_plugins.conf", version_base="1.3"):
        return compose(overrides=[f"+schedule={name}", *overrides]).schedule


def test_every_registered_schedule_has_one_preset_and_every_preset_shares_the_keys():
    targets = {name: preset(name)._target_ for name in PRESETS}
    assert sorted(t.removeprefix("lr_plugins.") for t in targets.values()) == sorted(CURVES)
    for name in PRESETS:
        cfg = preset(name)
        assert all(k in cfg for k in SHARED), name
        assert cfg.max_lr is None and cfg.unit == "fraction", name  # relative to the optimizer and the length


def fit_preset(tmp_path, name: str, lr: float, length: str):
    trainer_kw, steps = LENGTHS[length]
    schedule = instantiate(preset(name))
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec], **trainer_kw)
    trainer.fit(TinyModule(lr=lr), make_loader(n=64, batch_size=8))
    return schedule, rec, steps


def check_fit(tmp_path, name, lr, length):
    schedule, rec, steps = fit_preset(tmp_path, name, lr, length)
    used = np.array([lrs[0] for lrs in rec.lrs])
    assert len(used) == steps == schedule.fit_total_steps
    assert np.all(used >= 0) and np.all(used <= lr * (1 + 1e-12)), (name, used)
    # The reference: the same preset with the optimizer's LR as its explicit peak, without a Trainer.
    ref = instantiate(preset(name, f"schedule.max_lr={lr!r}")).preview(steps, steps_per_epoch=8)
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
    for n in (40, 400):
        at = {name: instantiate(preset(name, "schedule.max_lr=1.0")) for name in PRESETS}
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
        one = at["onecycle"].preview(n)
        assert one.argmax() == round(0.3 * n) - 1 and one[0] == pytest.approx(1 / 25)


@pytest.mark.parametrize("override,words", [
    ("schedule.cycle_length=4", ["cycle_length=4.0 is not allowed with unit='fraction'", "unit='epoch'"]),
    ("schedule.warmup=2", ["warmup=2.0 is not allowed with unit='fraction'"]),
    ("schedule.milestones=[10,15]", ["milestones[0]=10.0 is not allowed with unit='fraction'"]),
])
def test_epoch_lengths_with_a_fraction_preset_are_refused_clearly(override, words):
    name = {"cycle": "sgdr", "warmu": "warmup_cosine", "miles": "step"}[override.split(".")[1][:5]]
    with pytest.raises(InstantiationException) as info:  # Hydra wraps the class's ValueError
        instantiate(preset(name, override))
    assert isinstance(info.value.__cause__, ValueError)
    msg = str(info.value)
    assert all(w in msg for w in words), msg


def test_epoch_lengths_work_with_unit_epoch():
    s = instantiate(preset("sgdr", "schedule.cycle_length=4", "schedule.unit=epoch", "schedule.max_lr=0.2"))
    assert s.cycle_ends(80, steps_per_epoch=10) == [39, 79]


def test_fraction_presets_refuse_infinite_training_before_any_step(tmp_path):
    schedule = instantiate(preset("sgdr"))
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec], max_epochs=-1)
    with pytest.raises(ValueError, match=r"SGDR needs the total number of optimizer steps \(unit='fraction'"):
        trainer.fit(TinyModule(lr=0.1), make_loader())
    assert rec.lrs == []


def test_snapshots_of_the_sgdr_preset_fall_on_its_cycle_ends(tmp_path):
    """SnapshotEnsemble with a fraction-unit SGDR: one snapshot per quarter of training."""
    from lr_plugins import SnapshotEnsemble

    schedule, snap = instantiate(preset("sgdr")), SnapshotEnsemble(dirpath=tmp_path / "snaps")
    trainer = make_trainer(tmp_path, [schedule, snap], max_epochs=3)
    trainer.fit(TinyModule(lr=0.1), make_loader())
    assert [r["step"] for r in snap.records] == schedule.cycle_ends(24, 8) == [5, 11, 17, 23]
