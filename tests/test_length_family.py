"""Every schedule x every way the length of training changes on resume (issue 17.5/17.6, issue 18).

The family: every curve of :data:`lr_plugins.schedules.CURVES`, built from its shipped presets
(``lr_plugins/conf/schedule/*.yaml`` through ``hydra.utils.instantiate``), each in the preset's
unit and in the other units (fraction lengths converted to epochs / steps of the checkpoint fit).
One checkpoint fit per schedule (4 epochs x 8 batches, checkpoints after optimizer steps 1, 12,
28 and at the end: warmup, middle, near the end, after the end; a second fit with
``accumulate_grad_batches=2`` for the 2 -> 1 change) is resumed with more epochs, fewer epochs,
accumulation 1 -> 2 and 2 -> 1, and ``limit_train_batches`` 8 -> 6.

Every case must end in exactly one of:

(a) refused before any step (no LR recorded), on one line giving the LR before and after and
    both ways on;
(b) seamless: every LR the resumed fit uses equals the reference, a fresh schedule of the new
    length evaluated by its closed form (``lr_at``), with ``unit="epoch"`` at the same epoch time
    (the real step ``k >= s`` is at epoch ``s / spe_old + (k - s) / spe_new``), and no jump at the
    resume step; it must be (b) whenever that reference gives every step already run, and the
    resume step, the LR of the old plan (the run so far does not depend on the length);
(c) refused by default and, with ``on_length_change="continue"``, the old curve from the resume
    step to its end spread over the steps left: ``v(k) = s + (k - s) (T_old - s) / (T_new - s)``,
    starting at the old plan's LR at ``s`` (no jump), monotone where the old curve was.

Plateau (metric-driven) joins the family with its preset's patience (no reduction in these short
fits) and again with a rule that reduces at every epoch end, whose reductions made before the
resume must stay and go on at the resumed fit's epoch ends. ScheduleFree runs with the preset's
``replace_optimizer: true`` (SGD -> SGDScheduleFree). The cyclic schedules run with a
SnapshotEnsemble attached, in every fit.

The references are bit-identical where every factor is a power of two (accumulation 1 <-> 2) and
within 1e-12 relative where the warp's rate ``8 / 6`` or ``(T_old - s) / (T_new - s)`` is not:
the product computes ``v(k)`` as ``at + (k - s) * rate``, the reference from integers on the
common epoch grid, which round differently in the last bit.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import OmegaConf
from test_callback_resume import SaveAt

import lr_plugins
from lr_plugins import SnapshotEnsemble
from lr_plugins.schedules import CURVES, CyclicCurve

PRESETS = Path(lr_plugins.__file__).parent / "conf" / "schedule"
EPOCHS, BATCHES = 4, 8  # the checkpoint fit: 32 optimizer steps (16 with accumulation 2)
STOPS = {1: (1, 16, 28), 2: (1, 6, 14)}  # per accumulation: in the warmup, the middle (an epoch end; mid-epoch with 2), near the end
PEAK = 0.1
#: Keys counted in units (converted from fractions of training), and rates per unit.
LENGTHS, RATES = ("warmup", "hold", "step_size", "cycle_length", "timescale"), ("rate",)


def _preset_args() -> dict[str, tuple[str, dict]]:
    out = {}
    for path in sorted(PRESETS.glob("*.yaml")):
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        out[path.stem] = (cfg["_target_"].removeprefix("lr_plugins."), cfg)
    return out


def _in_unit(cfg: dict, unit: str) -> dict:
    """The preset with its lengths counted in ``unit`` (the same curve for the checkpoint fit)."""
    cfg = dict(cfg)
    old = cfg["unit"]
    scale = {"fraction": 1.0, "epoch": float(EPOCHS), "step": float(EPOCHS * BATCHES)}
    f = scale[unit] / scale[old]
    for k in LENGTHS:
        if cfg.get(k) is not None:
            cfg[k] = cfg[k] * f
    for k in RATES:
        if cfg.get(k) is not None:
            cfg[k] = cfg[k] / f
    if cfg.get("milestones") is not None:
        cfg["milestones"] = [m * f for m in cfg["milestones"]]
    cfg["unit"] = unit
    return cfg


def _variants() -> dict[str, dict]:
    out = {}
    for name, (_, cfg) in _preset_args().items():
        cfg = {**cfg, "max_lr": PEAK}
        if "monitor" in cfg:
            cfg["monitor"] = "train_loss"  # no validation in these fits: the training loss, per epoch
        for unit in (cfg["unit"], *[u for u in ("fraction", "epoch", "step") if u != cfg["unit"]]):
            out[f"{name}-{unit}"] = _in_unit(cfg, unit)
        if cfg.get("cycle_length", 0) is None:  # SGDR: cycles of a given length, the length-free case
            for unit, length in (("epoch", 1.0), ("step", 8.0)):
                out[f"{name}-{unit}-cycles"] = {**_in_unit(cfg, unit), "cycle_length": length}
    return out


VARIANTS = _variants()
#: name: (checkpoint's accumulation, the resumed Trainer's arguments)
CHANGES = {
    "longer": (1, dict(max_epochs=6)),
    "shorter": (1, dict(max_epochs=3)),
    "accumulate-1-to-2": (1, dict(accumulate_grad_batches=2)),
    "accumulate-2-to-1": (2, dict(accumulate_grad_batches=1)),
    "limit_train_batches-8-to-6": (1, dict(limit_train_batches=6)),
}


def build(name: str, **extra):
    return instantiate({**SCHEDULES[name], **extra}, _convert_="all")


class LoggingModule(TinyModule):
    """TinyModule logging its training loss per epoch (the metric Plateau watches here)."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss


class SaveOnce(SaveAt):
    """SaveAt that saves right after the optimizer step only (not again after accumulating batches)."""

    def on_train_batch_end(self, trainer, *args):
        super().on_train_batch_end(trainer, *args)
        self.steps.discard(trainer.global_step)


def fit(root: Path, name: str, *, ckpt_path=None, stops=(), save_end=False, **kwargs):
    """A real fit of the schedule ``name``; returns (LRs used, momenta, error raised)."""
    schedule = build(name, **kwargs.pop("schedule", {}))
    rec = LRRecorder()
    callbacks = [schedule, rec, SaveOnce(root, stops)]
    if isinstance(schedule, CyclicCurve):
        callbacks.append(SnapshotEnsemble(dirpath=root / "snapshots", evaluate=False, verbose=False))
    kwargs.setdefault("max_epochs", EPOCHS)
    trainer = make_trainer(root, callbacks, **kwargs)
    torch.manual_seed(0)
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            trainer.fit(LoggingModule(), make_loader(n=BATCHES * 8), ckpt_path=ckpt_path)
        except (ValueError, MisconfigurationException) as e:  # ours, or Lightning's (fewer epochs than run)
            error = e
    assert not [w for w in caught if "changed LR schedule" in str(w.message)]
    if save_end and error is None:
        trainer.save_checkpoint(root / "end.ckpt")
    return [x[0] for x in rec.lrs], rec.momenta, error


_ROOTS: dict = {}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """``get(name, accumulate)``: the checkpoint fit (run once per schedule and accumulation)."""

    def get(name: str, accumulate: int):
        key = (name, accumulate)
        if key not in _ROOTS:
            root = tmp_path_factory.mktemp(f"{name}-a{accumulate}")
            lrs, momenta, error = fit(root, name, stops=STOPS[accumulate], save_end=True,
                                      accumulate_grad_batches=accumulate)
            assert error is None, error
            _ROOTS[key] = (root, lrs, momenta)
        return _ROOTS[key]

    return get


def ckpt(root: Path, step: int, accumulate: int) -> Path:
    end = EPOCHS * BATCHES // accumulate
    return root / ("end.ckpt" if step == end else f"step={step}.ckpt")


def close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)


# ---------------------------------------------------------------------- the arithmetic of a change
def new_total(s: int, acc_old: int, acc_new: int, epochs: int, batches: int) -> int:
    """Optimizer steps of the resumed fit, the s already run included (counted by hand)."""
    spe_old, spe_new = BATCHES // acc_old, math.ceil(batches / acc_new)
    e = s // spe_old
    if s == EPOCHS * spe_old:  # saved after the fit: every epoch completed
        return s + max(epochs - EPOCHS, 0) * spe_new
    if e >= epochs:
        return s
    done = (s - e * spe_old) * acc_old  # batches of epoch e already run
    return s + max(spe_new - done // acc_new, 0) + (epochs - e - 1) * spe_new


class Case:
    """One resume: the old plan, the new one, and the independent reference LRs."""

    def __init__(self, name: str, change: str, s: int):
        acc_old, kwargs = CHANGES[change]
        self.kwargs = kwargs
        acc_new = kwargs.get("accumulate_grad_batches", acc_old)
        batches = kwargs.get("limit_train_batches", BATCHES)
        epochs = kwargs.get("max_epochs", EPOCHS)
        self.curve = build(name)
        self.s, self.spe_old, self.spe_new = s, BATCHES // acc_old, math.ceil(batches / acc_new)
        self.t_old = EPOCHS * self.spe_old
        self.t_new = new_total(s, acc_old, acc_new, epochs, batches)
        # unit="epoch": the same epoch time on the checkpoint's curve, whose step grid stays the
        # checkpoint's (spe_old): real step k >= s is curve step s + (k - s) spe_old / spe_new. For a
        # curve that is a function of the epoch time alone this is also a fresh schedule of the new
        # length on a finer grid; OneCycle's phase ends are whole steps of its grid (torch's ``- 1``).
        self.rate = Fraction(self.spe_old, self.spe_new) if self.curve.unit == "epoch" else Fraction(1)
        self.t_v = self.v(self.t_new)

    def v(self, k: int) -> Fraction:
        return Fraction(k) if k < self.s else self.s + (k - self.s) * self.rate

    def old(self, k: int) -> float:
        """The checkpoint's plan: a fresh schedule of the old length (clamped past its end)."""
        return self.curve.lr_at(k, self.t_old, self.spe_old)

    def new(self, k: int) -> float:
        """A fresh schedule of the new length, by its closed form (``lr_at`` where the steps are whole)."""
        v, total = self.v(k), self.t_v
        if v.denominator == 1 and total.denominator == 1:
            return self.curve.lr_at(int(v), int(total), self.spe_old)
        self.curve.check_total(float(total), self.spe_old)
        return self.curve.lr(float(v), float(total), self.spe_old, PEAK)

    def new_momentum(self, k: int) -> float | None:
        return self.curve.momentum(float(self.v(k)), float(self.t_v), self.spe_old)

    def new_valid(self) -> bool:
        try:
            self.new(self.s)
        except ValueError:  # e.g. a warmup longer than the new training
            return False
        return True

    def fresh_on_grid(self) -> list[float] | None:
        """``unit="epoch"``: a fresh schedule of the new length with ``lcm(spe_old, spe_new)`` steps per
        epoch, at the same epoch times as steps ``s ..`` (None where the curve's LR at an epoch time
        depends on its step grid, as OneCycle's does, or for another unit)."""
        if self.curve.unit != "epoch" or self.rate == 1:
            return None
        grid = math.lcm(self.spe_old, self.spe_new)
        a, b = grid // self.spe_old, grid // self.spe_new
        coarse = self.curve.preview(self.t_old, self.spe_old)
        if not all(close(x, y) for x, y in zip(coarse, self.curve.preview(self.t_old * a, grid)[::a])):
            return None
        at = lambda k: self.s * a + (k - self.s) * b  # noqa: E731
        return [self.curve.lr_at(at(k), at(self.t_new), grid) for k in range(self.s, self.t_new)]

    @property
    def exact(self) -> bool:
        """Whether the product's float warp is exact (a rate of 1, 2 or 1/2): then bit-identical."""
        return self.rate in (1, 2, Fraction(1, 2))

    def cont(self, k: int) -> float:
        """The continue plan: the old curve from ``s`` to its end over the steps left."""
        v = self.s + (k - self.s) * (self.t_old - self.s) / (self.t_new - self.s)
        return self.curve.lr(v, self.t_old, self.spe_old, PEAK)


def _check_refusal(case: Case, lrs, error) -> None:
    msg = str(error)
    assert "\n" not in msg and lrs == [], msg
    assert f"cannot resume at optimizer step {case.s} with another length of training" in msg, msg
    # the LR in use at the resume step: from the old plan's end on, its last step's (no LR is written past it)
    before, after = case.old(min(case.s, case.t_old - 1)), case.new(case.s) if case.new_valid() else None
    assert f"instead of {before:.6g}" in msg, msg
    if after is not None:
        assert f"would use LR {after:.6g} instead" in msg, msg
    assert "Keep the old length (" in msg and "on_length_change='continue'" in msg, msg


def _check_continue(case: Case, lrs) -> None:
    s = case.s
    assert len(lrs) == case.t_new - s
    if s >= case.t_old:  # the old plan had ended: its last step's LR, the one in use, is kept (no restart)
        last = case.old(case.t_old - 1)
        assert all(close(x, last) for x in lrs), ("a finished plan continued must keep its last LR", lrs, last)
        return
    assert close(lrs[0], case.old(s)), ("a jump at the resume step", lrs[0], case.old(s))
    want = [case.cont(k) for k in range(s, case.t_new)]
    assert all(close(a, b) for a, b in zip(lrs, want)), (lrs, want)
    rest = [case.old(k) for k in range(s, case.t_old + 1)]
    for sign in (1, -1):  # monotone where the old curve was
        if all(sign * (b - a) <= 0 for a, b in zip(rest, rest[1:])):
            assert all(sign * (b - a) <= 1e-15 for a, b in zip(lrs, lrs[1:])), lrs


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("name", list(VARIANTS))
def test_resume_with_another_length_is_seamless_refused_or_continued(tmp_path, checkpoints, name, change):
    acc_old = CHANGES[change][0]
    root, _, _ = checkpoints(name, acc_old)
    for s in (*STOPS[acc_old], EPOCHS * BATCHES // acc_old):
        case = Case(name, change, s)
        lrs, moms, error = fit(tmp_path / f"r{s}", name, ckpt_path=ckpt(root, s, acc_old), **case.kwargs)
        where = (name, change, s)
        if case.t_new <= s:  # nothing left to run (Lightning refuses fewer epochs than were completed)
            assert lrs == [] and (error is None or isinstance(error, MisconfigurationException)), where
            continue
        free = case.new_valid() and all(close(case.old(k), case.new(k)) for k in range(s + 1))
        if error is not None:  # (a), then (c)
            assert not free, ("refused, but the run so far does not depend on the length", where, str(error))
            _check_refusal(case, lrs, error)
            # a second checkpoint 3 steps on, from the mid-epoch stops (one in the epoch after a resume from an
            # epoch's last batch makes Lightning run that epoch again: see the last test)
            again = s + 3 if 1 < s < case.t_old and s % case.spe_old and s + 3 < case.t_new else None
            lrs, _, error = fit(tmp_path / f"c{s}", name, ckpt_path=ckpt(root, s, acc_old), stops=(again,),
                                schedule={"on_length_change": "continue"}, **case.kwargs)
            assert error is None, (where, error)
            _check_continue(case, lrs)
            if again is not None:  # the re-planned curve is in the checkpoint: a second resume goes on exactly
                lrs2, _, error = fit(tmp_path / f"cc{s}", name, ckpt_path=tmp_path / f"c{s}" / f"step={again}.ckpt",
                                     schedule={"on_length_change": "continue"}, **case.kwargs)
                assert error is None and lrs2 == lrs[3:], (where, error)
            continue
        # (b): seamless, the new length's closed form, no jump
        assert case.new_valid(), where
        assert len(lrs) == case.t_new - s, where
        want = [case.new(k) for k in range(s, case.t_new)]
        same = (lambda a, b: a == b) if case.exact else close
        assert all(same(a, b) for a, b in zip(lrs, want)), (where, lrs, want)
        if case.new_momentum(s) is not None:  # CyclicLR, OneCycle: the momentum follows the same time
            assert all(same(m, case.new_momentum(k)) for k, m in zip(range(s, case.t_new), moms)), (where, moms)
        assert close(lrs[0], case.old(s)), ("a silent jump at the resume step", where, lrs[0], case.old(s))
        fresh = case.fresh_on_grid()
        if fresh is not None:  # a function of the epoch time: also a fresh schedule of the new length, finer grid
            assert all(close(a, b) for a, b in zip(lrs, fresh)), (where, lrs, fresh)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_resume_with_the_same_length_is_bit_identical(tmp_path, checkpoints, name):
    root, full, momenta = checkpoints(name, 1)
    assert full == build(name).preview(EPOCHS * BATCHES, BATCHES).tolist()
    for s in STOPS[1]:
        lrs, moms, error = fit(tmp_path / f"r{s}", name, ckpt_path=ckpt(root, s, 1))
        assert error is None, error
        assert lrs == full[s:] and moms == momenta[s:], (name, s)


def test_the_family_covers_every_schedule_in_every_unit():
    targets = {cls for cls, _ in _preset_args().values()}
    assert targets == set(CURVES)
    for cls in CURVES:
        units = {VARIANTS[n]["unit"] for n in VARIANTS if VARIANTS[n]["_target_"].endswith("." + cls)}
        assert units == {"fraction", "epoch", "step"}, cls
    assert len(VARIANTS) * len(CHANGES) >= 5 * len(CURVES) * 3


# ---------------------------------------------------------------------- Plateau: its rule's state goes on
#: A rule that reduces at every epoch end but the first (nothing counts as better), so the reductions
#: are known without the metric's values: after the n-th epoch end the LR is 0.1 * 0.5 ** (n - 1).
NEVER_BETTER = dict(mode="max", threshold=1e9, threshold_mode="abs", patience=0, factor=0.5)
SCHEDULES = {**VARIANTS, **{f"{n}-never-better": {**VARIANTS[n], **NEVER_BETTER} for n in VARIANTS if "monitor" in VARIANTS[n]}}


def epoch_ends(case: Case, acc_old: int) -> list[int]:
    """The optimizer steps after which an epoch ends: the checkpoint's up to ``s``, then the resumed fit's."""
    old = [e for e in range(case.spe_old, case.t_old + 1, case.spe_old) if e <= case.s]
    if case.s == case.t_old:
        first = case.s + case.spe_new
    else:
        done = (case.s - case.s // case.spe_old * case.spe_old) * acc_old
        first = case.s + case.spe_new - done // case.kwargs.get("accumulate_grad_batches", acc_old)
    return old + list(range(first, case.t_new + 1, case.spe_new))


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("name", ["plateau-epoch", "plateau-step", "plateau-fraction"])
def test_plateau_reductions_go_on_through_a_length_change(tmp_path, checkpoints, name, change):
    """The reductions made before the resume stay, the resumed fit's epoch ends reduce further; with
    ``unit="epoch"``/``"step"`` (or past a fraction warmup) the LR needs no end: seamless."""
    acc_old = CHANGES[change][0]
    plain = name + "-never-better"
    root, full, _ = checkpoints(plain, acc_old)
    assert full[-1] == PEAK * 0.5**2  # the checkpoint fit reduced at its 2nd and 3rd epoch ends
    t_old = EPOCHS * BATCHES // acc_old
    # Not from a checkpoint written after an epoch's last batch: Lightning (2.6) resumed from one calls no
    # on_train_epoch_end for that epoch, so the rule never sees its value (the report's open finding).
    for s in (*[x for x in STOPS[acc_old][1:] if x % (BATCHES // acc_old)], t_old):
        case = Case(plain, change, s)
        lrs, _, error = fit(tmp_path / f"r{s}", plain, ckpt_path=ckpt(root, s, acc_old), **case.kwargs)
        if case.t_new <= s:
            assert lrs == []
            continue
        assert error is None, (plain, change, s, error)
        ends = epoch_ends(case, acc_old)
        want = []
        for k in range(s, case.t_new):
            n = sum(e <= k for e in ends)
            want.append(case.new(k) if n <= 1 else PEAK * 0.5 ** (n - 1))
        assert lrs == want, (plain, change, s, lrs, want)
        assert lrs[0] == full[s] if s < t_old else lrs[0] == PEAK * 0.5 ** 3  # no jump: the reductions stay


# ---------------------------------------------------------------------- the same length, Lightning runs more
def test_a_second_resume_that_lightning_runs_longer_is_refused_naming_why_and_a_way_that_works(tmp_path):
    """Resumed from the checkpoint after an epoch's last batch (step 16), checkpointed inside the next
    epoch (step 19) and resumed again with nothing changed: Lightning 2.x runs the 3 batches of epoch 2
    again (35 steps, not 32). The refusal says so and offers max_steps, which the user has not set
    (not max_epochs=4, which they have); with it, the LRs are those of the uninterrupted fit."""
    name = "warmup_cosine-step"
    full, _, _ = fit(tmp_path / "a", name, stops=(16,))
    once, _, error = fit(tmp_path / "b", name, ckpt_path=tmp_path / "a" / "step=16.ckpt", stops=(19, 24))
    assert error is None and once == full[16:]
    for step, again in ((19, 3), (24, 8)):  # inside epoch 2, at its last batch
        lrs, _, error = fit(tmp_path / f"c{step}", name, ckpt_path=tmp_path / "b" / f"step={step}.ckpt")
        msg = str(error)
        assert lrs == [] and "\n" not in msg
        assert (f"this fit {32 + again} (8 per epoch) (Lightning runs the {again} batches of epoch 2 already run "
                "again") in msg, msg
        assert "Keep the old length (trainer.max_steps=32)" in msg and "max_epochs=4" not in msg, msg
        lrs, _, error = fit(tmp_path / f"d{step}", name, ckpt_path=tmp_path / "b" / f"step={step}.ckpt", max_steps=32)
        assert error is None and lrs == full[step:]
