"""LRFinder in a real Trainer: the ramp, accumulation, where the pick goes, and its outputs."""

from __future__ import annotations

import csv
import math

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer

from lr_plugins import SGDR, CyclicLR, LRFinder, OneCycle, WarmupCosine, find_lr
from lr_plugins.files import unwritable_reason
from lr_plugins.finder import RULES

RANGE = dict(min_lr=1e-4, max_lr=1.0, num_steps=20)


class Spy(TinyModule):
    """Records the LR of every group and the loss of every training_step call."""

    def __init__(self, *args, scheduler=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.scheduler = scheduler
        self.seen_lrs: list[list[float]] = []
        self.seen_losses: list[float] = []

    def training_step(self, batch, batch_idx):
        self.seen_lrs.append([g["lr"] for g in self.trainer.optimizers[0].param_groups])
        loss = super().training_step(batch, batch_idx)
        self.seen_losses.append(float(loss))
        return loss

    def configure_optimizers(self):
        opt = super().configure_optimizers()
        if self.scheduler is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": self.scheduler(opt)}


def torch_reference(make_scheduler, lr: float, steps: int) -> list[float]:
    """The LR of each of ``steps`` optimizer steps under a torch scheduler built on ``SGD(lr=lr)``."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_ramp_and_param_group_ratios(tmp_path):
    module = Spy(groups=(0.1, 0.01))
    finder = LRFinder(**RANGE)
    make_trainer(tmp_path, [finder], max_epochs=1).fit(module, make_loader())
    ramp = np.geomspace(RANGE["min_lr"], RANGE["max_lr"], RANGE["num_steps"])
    n = len(finder.result.lrs)
    np.testing.assert_allclose(finder.result.lrs, ramp[:n], rtol=1e-12)
    seen = np.array(module.seen_lrs[:n])
    np.testing.assert_allclose(seen[:, 0], ramp[:n], rtol=1e-12)
    np.testing.assert_allclose(seen[:, 1], ramp[:n] / 10, rtol=1e-12)
    # The pick is applied with the configured ratio kept (Lightning sets every group to one value).
    pick = finder.result.suggestion
    np.testing.assert_allclose(module.seen_lrs[n], [pick, pick / 10], rtol=1e-12)


def test_linear_mode(tmp_path):
    module = Spy()
    finder = LRFinder(min_lr=0.001, max_lr=0.1, num_steps=12, mode="linear", apply=False)
    make_trainer(tmp_path, [finder], max_epochs=1).fit(module, make_loader())
    np.testing.assert_allclose(finder.result.lrs, np.linspace(0.001, 0.1, 12)[: len(finder.result.lrs)], rtol=1e-12)
    assert module.seen_lrs[len(finder.result.lrs)] == [0.1]  # apply=False leaves the optimizer's lr


def test_accumulation_one_point_per_optimizer_step(tmp_path):
    module = Spy()
    finder = LRFinder(min_lr=1e-4, max_lr=0.01, num_steps=10, apply=False)
    make_trainer(tmp_path, [finder], max_epochs=1, accumulate_grad_batches=3).fit(module, make_loader(n=64))
    r = finder.result
    assert len(r.lrs) == 10 and r.stop_reason == "completed"
    calls = np.array(module.seen_losses[:30]).reshape(10, 3)
    np.testing.assert_allclose(r.losses, calls.mean(1), rtol=1e-6)
    lrs = np.array(module.seen_lrs[:30])[:, 0].reshape(10, 3)
    assert (lrs == lrs[:, :1]).all()  # one LR per window
    np.testing.assert_allclose(lrs[:, 0], np.geomspace(1e-4, 0.01, 10), rtol=1e-12)


def test_own_torch_scheduler_keeps_the_pick(tmp_path):
    module = Spy(scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    rec = LRRecorder()
    finder = LRFinder(**RANGE)
    make_trainer(tmp_path, [finder, rec], max_epochs=3).fit(module, make_loader(n=32))
    pick = finder.result.suggestion
    # Reference: torch's StepLR on an optimizer created with lr = pick, stepped once per epoch (4 steps).
    expected = [lr for lr in torch_reference(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), pick, 3) for _ in range(4)]
    np.testing.assert_allclose([lr[0] for lr in rec.lrs], expected, rtol=1e-12)


def test_own_onecycle_scheduler_gets_the_pick_as_its_peak(tmp_path):
    total = 8
    make = lambda opt: {"scheduler": torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=total), "interval": "step"}  # noqa: E731
    module = Spy(scheduler=make)
    rec = LRRecorder()
    finder = LRFinder(**RANGE)
    make_trainer(tmp_path, [finder, rec], max_epochs=2).fit(module, make_loader(n=32))
    pick = finder.result.suggestion
    expected = torch_reference(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=pick, total_steps=total, cycle_momentum=False), pick, total
    )
    np.testing.assert_allclose([lr[0] for lr in rec.lrs], expected, rtol=1e-10)


def test_pick_applied_to_sgdr(tmp_path):
    module = Spy(lr=0.123)
    rec = LRRecorder()
    finder = LRFinder(**RANGE)
    # The finder after the schedule in the list: order does not matter, the peak is read at train start.
    make_trainer(tmp_path, [SGDR(cycle_length=1), finder, rec], max_epochs=2).fit(module, make_loader(n=32))
    pick = finder.result.suggestion
    assert finder.applied.startswith("SGDR.max_lr")
    expected = torch_reference(lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4), pick, 8)
    np.testing.assert_allclose([lr[0] for lr in rec.lrs], expected, rtol=1e-10, atol=1e-15)


class RecordingSGDR(SGDR):
    """SGDR that records every set_peak call and every attribute written after construction."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.peaks: list[float] = []
        self.writes: list[str] = []
        self._built = True

    def set_peak(self, lr):
        self.peaks.append(lr)
        self._in_set_peak = True
        try:
            super().set_peak(lr)
        finally:
            self._in_set_peak = False

    def __setattr__(self, name, value):
        if getattr(self, "_built", False) and not getattr(self, "_in_set_peak", False) and not name.startswith("_") \
                and name not in ("peaks", "writes", "log", "log_dict"):  # Lightning itself sets log/log_dict
            self.writes.append(name)
        super().__setattr__(name, value)


def test_the_pick_reaches_the_schedule_only_through_set_peak(tmp_path):
    """One hand-off: the finder calls set_peak(pick) once and writes no schedule attribute itself."""
    schedule = RecordingSGDR(cycle_length=1)
    finder = LRFinder(**RANGE)
    make_trainer(tmp_path, [finder, schedule], max_epochs=1).fit(Spy(), make_loader(n=32))
    assert schedule.peaks == [finder.result.suggestion] and schedule.writes == []
    assert schedule.max_lr == finder.result.suggestion


def test_pick_applied_to_cyclic_lr_is_its_own_set_peak(tmp_path):
    """CyclicLR ends up exactly as its own set_peak(pick) leaves a twin (whatever it does to its floor),
    and trains as torch's CyclicLR with those bounds."""
    module = Spy()
    rec = LRRecorder()
    finder = LRFinder(**RANGE)
    clr = CyclicLR(step_size=2, unit="step", cycle_momentum=False)
    make_trainer(tmp_path, [finder, clr, rec], max_epochs=2).fit(module, make_loader(n=32))
    pick = finder.result.suggestion
    twin = CyclicLR(step_size=2, unit="step", cycle_momentum=False)
    twin.set_peak(pick)
    assert clr.config() == twin.config() and clr.max_lr == pick
    expected = torch_reference(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, base_lr=twin.min_lr, max_lr=pick, step_size_up=2,
                                                      cycle_momentum=False),
        pick,
        8,
    )
    np.testing.assert_allclose([lr[0] for lr in rec.lrs], expected, rtol=1e-10)


def test_apply_false_only_reports(tmp_path):
    sched = WarmupCosine(max_lr=0.05)
    finder = LRFinder(**RANGE, apply=False)
    make_trainer(tmp_path, [finder, sched], max_epochs=1).fit(Spy(), make_loader(n=32))
    assert sched.max_lr == 0.05 and finder.result is not None and finder.applied == "nothing"


def test_scale_multiplies_the_applied_and_printed_pick_only(tmp_path, capsys):
    """scale=0.5: the schedule gets half the rule's LR; the unscaled picks match a run without scale."""
    runs = {}
    for scale in (1.0, 0.5):
        torch.manual_seed(0)
        sched = WarmupCosine(max_lr=0.05)
        finder = LRFinder(**RANGE, suggestion="valley", scale=scale)
        make_trainer(tmp_path, [finder, sched], max_epochs=1).fit(Spy(), make_loader(n=32))
        runs[scale] = (finder.result, sched.max_lr, capsys.readouterr().out)
    (plain, plain_lr, _), (half, half_lr, printed) = runs[1.0], runs[0.5]
    assert half.suggestions == plain.suggestions and half.lrs == plain.lrs  # the same test
    assert half.suggestion == 0.5 * half.suggestions["valley"] == half_lr and plain.suggestion == plain_lr
    assert half.scale == 0.5 and f"valley {plain.suggestion:.3g} x 0.5" in printed
    assert f"schedule.max_lr={float(f'{half.suggestion:.3g}'):g}" in printed
    labels = half.plot().axes[0].get_legend_handles_labels()[1]
    assert f"applied: valley x 0.5 = {half.suggestion:.3g}" in labels
    # scale=1 (the default) says nothing about scaling
    assert " x 1" not in plain.summary() and not [x for x in plain.plot().axes[0].get_legend_handles_labels()[1]
                                                   if x.startswith("applied")]


def test_scale_past_the_tested_range_warns(tmp_path):
    finder = LRFinder(**RANGE, scale=1e3)
    with pytest.warns(UserWarning, match=r"scale=1000 puts the applied LR .* above the largest LR the test reached"):
        make_trainer(tmp_path, [finder], max_epochs=1).fit(Spy(), make_loader(n=32))
    assert finder.result.suggestion > max(finder.result.lrs)


def test_outputs_png_csv_tensorboard_and_override_line(tmp_path, capsys):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    finder = LRFinder(**RANGE)
    trainer = make_trainer(tmp_path, [finder], max_epochs=1, logger=logger)
    trainer.fit(Spy(), make_loader(n=32))
    r = finder.result
    out = tmp_path / "tb" / "version_0" / "lr_finder"
    assert (out / "lr_finder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "lr_finder.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(x["lr"]) for x in rows] == r.lrs and [float(x["loss"]) for x in rows] == r.losses
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    acc = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    losses = [e.value for e in acc.Scalars("lr_finder/loss")]
    np.testing.assert_allclose(losses, r.losses, rtol=1e-6)
    assert [e.step for e in acc.Scalars("lr_finder/lr")] == list(range(len(r.lrs)))
    assert "lr_finder/curve" in acc.Tags()["images"]
    assert acc.Scalars("lr_finder/suggestion_steepest")[0].value == pytest.approx(r.suggestions["steepest"], rel=1e-6)
    assert acc.Scalars("lr_finder/suggestion")[0].value == pytest.approx(r.suggestion, rel=1e-6)
    printed = capsys.readouterr().out
    assert f"schedule.max_lr={float(f'{r.suggestion:.3g}'):g}" in printed


def test_explicit_output_dir_without_logger(tmp_path):
    finder = LRFinder(**RANGE, output_dir=tmp_path / "out", verbose=False)
    make_trainer(tmp_path, [finder], max_epochs=1).fit(Spy(), make_loader(n=32))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lr_finder.csv", "lr_finder.png"]


def test_find_lr_with_trainer_kwargs():
    result = find_lr(Spy(), train_dataloaders=make_loader(), trainer_kwargs={"accumulate_grad_batches": 2}, **RANGE)
    assert result.diagnostics["accumulate_grad_batches"] == 2
    assert set(result.suggestions) == set(RULES)
    assert result.suggestion == result.suggestions["steepest"] and math.isfinite(result.suggestion)
    assert result.rule == "steepest"  # auto without a schedule
    assert len(result.smoothed) == len(result.lrs) == len(result.losses)


def test_warning_names_a_hint(tmp_path):
    with pytest.warns(UserWarning, match="no clear descent.*raise max_lr"):
        # A range far below anything this model learns at: the curve stays flat.
        make_trainer(tmp_path, [LRFinder(min_lr=1e-9, max_lr=1e-8, num_steps=20)], max_epochs=1).fit(Spy(), make_loader())


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(min_lr=0.0), ValueError, "min_lr"),
        (dict(min_lr=1.0, max_lr=0.5), ValueError, "max_lr"),
        (dict(num_steps=2), ValueError, "num_steps"),
        (dict(num_steps=10.0), TypeError, "num_steps"),
        (dict(mode="cosine"), ValueError, "mode"),
        (dict(suggestion="best"), ValueError, "suggestion"),
        (dict(diverge_threshold=1.0), ValueError, "diverge_threshold"),
        (dict(apply="yes"), TypeError, "apply"),
        (dict(output_dir=3), TypeError, "output_dir"),
        (dict(scale=0.0), ValueError, "scale"),
        (dict(scale="2"), TypeError, "scale"),
    ],
)
def test_bad_arguments(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        LRFinder(**kwargs)


def test_manual_optimization_is_refused_before_any_step(tmp_path):
    class Manual(Spy):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

    module = Manual()
    with pytest.raises(ValueError, match="automatic optimization"):
        make_trainer(tmp_path, [LRFinder(**RANGE)], max_epochs=1).fit(module, make_loader())
    assert module.seen_losses == []


def _group_files():
    from pathlib import Path

    import lr_plugins

    return sorted((Path(lr_plugins.__file__).parent / "conf" / "lr_finder").glob("*.yaml"))


@pytest.mark.parametrize("path", _group_files(), ids=lambda p: p.stem)
def test_every_shipped_lr_finder_config_instantiates_with_plain_hydra(path, tmp_path):
    """Each file of the group composes (defaults included) and builds with hydra.utils.instantiate alone."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(path.parent), version_base="1.3"):
        cfg = compose(config_name=path.stem)
    finder = instantiate(cfg)
    assert isinstance(finder, LRFinder) and finder.stop is False
    assert finder.suggestion == (path.stem if path.stem in RULES else "auto")


def test_config_comment_lists_the_registry():
    """The allowed values the shipped config documents are exactly auto + the registry, and every rule
    but ``minimum/10`` (no file name can hold the slash) has its own file in the group."""
    text = [p for p in _group_files() if p.stem == "auto"][0].read_text()
    line = [x for x in text.splitlines() if x.startswith("suggestion:")][0]
    assert line.split("#")[1].split() == " | ".join(["auto", *RULES]).split()
    assert {p.stem for p in _group_files()} == {"auto", *RULES} - {"minimum/10"}


def test_stop_ends_the_fit_after_the_test_before_any_training_step(tmp_path):
    module = Spy()
    schedule = WarmupCosine()
    rec = LRRecorder()
    finder = LRFinder(**RANGE, stop=True, verbose=False)
    trainer = make_trainer(tmp_path, [finder, schedule, rec], max_epochs=3)
    trainer.fit(module, make_loader(n=32))
    n = finder.result.diagnostics["steps"]
    assert trainer.global_step == 0 and rec.lrs == [] and len(module.seen_losses) == n  # the test's steps only
    assert schedule.max_lr == finder.result.suggestion  # applied, ready for a later fit


def test_stop_with_min_epochs_is_refused_before_any_step(tmp_path):
    module = Spy()
    with pytest.raises(ValueError, match=r"stop=True is not allowed with the Trainer's min_epochs=2"):
        make_trainer(tmp_path, [LRFinder(**RANGE, stop=True)], max_epochs=3, min_epochs=2).fit(module, make_loader())
    assert module.seen_losses == []


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_unusable_output_dir_fails_at_fit_start_before_any_step(tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("user data")
    target = blocker if where == "a file" else blocker / "sub"
    module = Spy()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match=rf"LRFinder: output_dir='{target}' is not allowed: .*must be a folder") as err:
        make_trainer(tmp_path, [LRFinder(**RANGE, output_dir=target)], max_epochs=1).fit(module, make_loader())
    assert module.seen_losses == [] and blocker.read_text() == "user data"
    # the words of lr_plugins.files.unwritable_reason, the one folder probe (issue 19.3), not an OS error's
    assert f"is not allowed: {unwritable_reason(target)};" in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_new_output_dir_is_checked_and_left_only_with_the_outputs(tmp_path):
    out = tmp_path / "new" / "deep"
    finder = LRFinder(**RANGE, output_dir=out, verbose=False)
    make_trainer(tmp_path, [finder], max_epochs=1).fit(Spy(), make_loader(n=32))
    assert sorted(p.name for p in out.iterdir()) == ["lr_finder.csv", "lr_finder.png"]  # no probe file left


def test_repr_and_hydra_config():
    from pathlib import Path

    import yaml

    import lr_plugins

    cfg = yaml.safe_load((Path(lr_plugins.__file__).parent / "conf" / "lr_finder" / "auto.yaml").read_text())
    assert cfg.pop("_target_") == "lr_plugins.LRFinder" and cfg["stop"] is False
    finder = LRFinder(**cfg)
    assert finder.suggestion == "auto" and "LRFinder(" in repr(finder) and "stop=False" in repr(finder)
    L.seed_everything(0, verbose=False)


@pytest.mark.parametrize(
    "make, kept",
    [
        (lambda: WarmupCosine(max_lr=1.0, min_lr=0.5), {"max_lr": 1.0, "min_lr": 0.5}),
        (lambda: CyclicLR(max_lr=1.0, min_lr=0.2, step_size=1, warmup_start_lr=0.5), {"max_lr": 1.0, "min_lr": 0.2}),
        (lambda: OneCycle(max_lr=1.0, min_lr=0.02, three_phase=True), {"max_lr": 1.0, "min_lr": 0.02}),
    ],
)
def test_a_pick_below_a_schedule_floor_changes_nothing(make, kept):
    """The schedule's own check_peak decides; a refused pick leaves every field as configured."""
    from types import SimpleNamespace

    from lr_plugins.finder.apply import apply_lr

    schedule = make()
    with pytest.warns(UserWarning, match="max_lr was left unchanged"):
        assert apply_lr(SimpleNamespace(callbacks=[schedule]), 0.3) == "nothing"
    assert {k: getattr(schedule, k) for k in kept} == kept
