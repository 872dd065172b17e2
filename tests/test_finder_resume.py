"""Resume is exact: the finder's result is saved in the checkpoint and re-applied, never re-measured."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lr_plugins import (
    SGDR,
    Constant,
    CyclicLR,
    ExponentialDecay,
    InverseTimeDecay,
    LRFinder,
    OneCycle,
    StepDecay,
    WarmupCosine,
)
from lr_plugins.finder.auto import ANNEALED_RULE

SCHEDULES = {
    "none": None,
    "WarmupCosine": lambda: WarmupCosine(warmup=1),
    "SGDR": lambda: SGDR(cycle_length=1),
    "CyclicLR": lambda: CyclicLR(step_size=1),
    "OneCycle": lambda: OneCycle(),
    "StepDecay": lambda: StepDecay(step_size=1),
    "ExponentialDecay": lambda: ExponentialDecay(rate=0.3),
    "InverseTimeDecay": lambda: InverseTimeDecay(rate=0.5),
    "Constant": lambda: Constant(warmup=1),
}
EPOCHS, BATCHES = 3, 4  # 12 optimizer steps; the checkpoint after epoch 1 holds step 4


class Counting(TinyModule):
    def __init__(self):
        super().__init__(lr=0.05)
        self.calls = 0

    def training_step(self, batch, batch_idx):
        self.calls += 1
        return super().training_step(batch, batch_idx)


def fit(tmp_path, make, ckpt_path=None, save=False):
    torch.manual_seed(0)
    module = Counting()
    finder = LRFinder(min_lr=1e-4, max_lr=1.0, num_steps=20, verbose=False)
    schedule = make() if make is not None else None
    rec = LRRecorder()
    callbacks = [finder, rec] + ([schedule] if schedule is not None else [])
    if save:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_epochs=1, save_top_k=-1))
    trainer = make_trainer(tmp_path, callbacks, max_epochs=EPOCHS, enable_checkpointing=save)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, make_loader(n=8 * BATCHES), ckpt_path=ckpt_path)
    return module, finder, schedule, rec, [str(w.message) for w in caught]


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_resume_reapplies_the_saved_pick_and_continues_bit_for_bit(tmp_path, name):
    make = SCHEDULES[name]
    full_module, full_finder, full_schedule, full_rec, _ = fit(tmp_path, make, save=True)
    assert full_module.calls == full_finder.result.diagnostics["steps"] + EPOCHS * BATCHES
    ckpt = tmp_path / "ckpt" / f"epoch=0-step={BATCHES}.ckpt"
    # Fresh callbacks, fresh module: everything the resumed run knows comes from the checkpoint.
    module, finder, schedule, rec, caught = fit(tmp_path / "resumed", make, ckpt_path=ckpt)
    assert module.calls == (EPOCHS - 1) * BATCHES  # no second range test: only the remaining training steps
    assert finder.result.to_dict() == full_finder.result.to_dict()
    assert rec.lrs == full_rec.lrs[BATCHES:]  # bit for bit
    if schedule is not None:
        assert schedule.config() == full_schedule.config()
    assert not [m for m in caught if "changed LR schedule" in m]


def test_checkpoint_state_loads_with_weights_only(tmp_path):
    """The saved result is plain Python: torch.load(weights_only=True) reads it back."""
    fit(tmp_path, SCHEDULES["WarmupCosine"], save=True)
    ckpt = torch.load(tmp_path / "ckpt" / f"epoch=0-step={BATCHES}.ckpt", weights_only=True)
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("LRFinder")]
    assert state["result"]["rule"] == ANNEALED_RULE and state["result"]["reason"].startswith("WarmupCosine is annealed")


def test_malformed_checkpoint_state_names_the_problem():
    with pytest.raises(ValueError, match="LRFinder checkpoint state is malformed"):
        LRFinder().load_state_dict({"result": {"lrs": [0.1], "bogus": 1}})


def test_a_strategy_that_restores_after_fit_start_still_gets_the_saved_pick(tmp_path):
    """DeepSpeed/FSDP restore callback state after on_fit_start: the test has run by then, so the
    checkpoint's result replaces it and is handed to the schedule (which reads its peak at train start)."""
    from types import SimpleNamespace

    _, full_finder, full_schedule, _, _ = fit(tmp_path, SCHEDULES["WarmupCosine"], save=True)
    ckpt = torch.load(tmp_path / "ckpt" / f"epoch=0-step={BATCHES}.ckpt", weights_only=True)
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("LRFinder")]
    schedule = WarmupCosine(warmup=1, max_lr=0.5)  # as a fresh test at fit start would have left it
    finder = LRFinder(verbose=False)
    finder._fit_trainer = SimpleNamespace(callbacks=[schedule], is_global_zero=True)  # between fit and train start
    finder.load_state_dict(state)
    assert finder.result.to_dict() == full_finder.result.to_dict()
    assert schedule.max_lr == full_schedule.max_lr == full_finder.result.suggestion


@pytest.mark.parametrize("key, value, allowed", [
    ("suggestion", 1e300, "scale x suggestions"),
    ("suggestion", float("inf"), "scale x suggestions"),
    ("suggestion", float("nan"), "scale x suggestions"),
    ("suggestion", True, "a number"),
    ("suggestion", "0.1", "a number"),
    ("scale", float("nan"), "a finite number > 0"),
    ("suggestions", {"steepest": 1e300, "valley": 1e300}, "a finite LR > 0 and at most the largest LR the test recorded"),
])
def test_a_checkpoint_pick_no_test_can_have_made_is_refused_before_any_step(tmp_path, key, value, allowed):
    """Issue 17.11: a resume applies the saved pick without testing again, so a pick of 1e300, inf, NaN, True
    or a string (or a scale, or rule LR, no test gives) is refused with one line naming the key."""
    fit(tmp_path, SCHEDULES["WarmupCosine"], save=True)
    path = tmp_path / "ckpt" / f"epoch=0-step={BATCHES}.ckpt"
    ckpt = torch.load(path, weights_only=True)
    (name,) = [k for k in ckpt["callbacks"] if k.startswith("LRFinder")]
    result = ckpt["callbacks"][name]["result"]
    if key == "suggestions":
        value = {**value, result["rule"]: 1e300}
        result["suggestion"] = 1e300 * result["scale"]
    result[key] = value
    torch.save(ckpt, path)
    named = f"checkpoint['callbacks'][LRFinder]['result']['{key}']" + (f"['{result['rule']}']" if key == "suggestions" else "")
    with pytest.raises(ValueError, match=re.escape(named) + r"=.* is not allowed: it must be " + re.escape(allowed)) as err:
        fit(tmp_path / "resumed", SCHEDULES["WarmupCosine"], ckpt_path=path)
    assert "\n" not in str(err.value)


def test_a_checkpoint_of_a_test_that_recorded_nothing_keeps_its_nan_pick_and_nothing_else():
    """A test whose first loss was not finite records no point and picks nan (nothing applied): that saved
    result is still read back; a number beside an empty curve is not."""
    from lr_plugins.finder import LRFinderResult

    empty = {"lrs": [], "losses": [], "smoothed": [], "ema": [], "suggestion": float("nan"),
             "suggestions": {"steepest": float("nan")}}
    assert math.isnan(LRFinderResult.from_dict(empty).suggestion)
    with pytest.raises(ValueError, match=r"\['suggestion'\]=0.1 is not allowed: it must be nan, as the test recorded no point"):
        LRFinderResult.from_dict({**empty, "suggestion": 0.1})
