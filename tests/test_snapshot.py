"""SnapshotEnsemble: snapshot steps, file safety, DDP, resume, ensemble evaluation and inference."""

from __future__ import annotations

import math
import os
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import GradientAccumulationScheduler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lr_plugins.snapshot.store as store
from lr_plugins import SGDR, CyclicLR, SnapshotEnsemble, WarmupCosine
from lr_plugins.app.models import Classifier
from lr_plugins.snapshot import list_snapshots, load_ensemble


class WeightRecorder(L.Callback):
    """The module's weights after every optimizer step, keyed by the number of steps done."""

    def __init__(self):
        self.after: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.after[trainer.global_step] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def class_loader(n=96, batch_size=8, seed=0, shuffle=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def classifier(seed=0):
    """A classifier with BatchNorm, so that a snapshot's buffers (running statistics) matter too."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    return Classifier(net, num_classes=3, lr=0.2)


def files(d):
    return sorted(p.name for p in Path(d).iterdir())


# ---------------------------------------------------------------------- steps and contents
@pytest.mark.parametrize(
    "schedule, n, accumulate, epochs, expected",
    [
        # 10 steps/epoch, cycles of 1.5 epochs end mid-epoch after steps 15, 30, 45: ends 14, 29, 44.
        (lambda: SGDR(max_lr=0.1, cycle_length=1.5), 80, 1, 5, [14, 29, 44]),
        # 10 batches, accumulate 3 -> 4 optimizer steps/epoch; cycles 1.25 epochs = 5 steps, x2.
        (lambda: SGDR(max_lr=0.1, cycle_length=1.25, cycle_mult=2.0, min_lr=0.001), 80, 3, 9, [4, 14, 34]),
        # one epoch of warmup, then cycles of 0.7 epoch (7 steps): boundaries 17, 24, 31, 38.
        (lambda: SGDR(max_lr=0.1, cycle_length=0.7, warmup=1), 80, 1, 4, [16, 23, 30, 37]),
        # triangular CLR, half cycle 0.6 epoch: troughs at steps 12, 24, 36 (the trough ends its cycle).
        (lambda: CyclicLR(max_lr=0.1, min_lr=0.01, step_size=0.6, cycle_momentum=False), 80, 1, 4, [12, 24, 36]),
    ],
)
def test_snapshot_steps_equal_cycle_ends(tmp_path, schedule, n, accumulate, epochs, expected):
    sched, lrs, weights = schedule(), LRRecorder(), WeightRecorder()
    snap = SnapshotEnsemble(dirpath=tmp_path / "snaps")
    trainer = make_trainer(tmp_path, [snap, sched, lrs, weights], max_epochs=epochs, accumulate_grad_batches=accumulate)
    trainer.fit(TinyModule(), make_loader(n=n))
    spe = sched.fit_steps_per_epoch
    total = trainer.global_step
    assert spe == math.ceil(n / 8 / accumulate)
    assert sched.cycle_ends(total, spe) == expected
    assert [r["step"] for r in snap.records] == expected
    assert files(tmp_path / "snaps") == [f"cycle{c:03d}-step{e:08d}.pt" for c, e in enumerate(expected)]
    used = [lr[0] for lr in lrs.lrs]
    for c, (e, path) in enumerate(zip(expected, snap.paths)):
        obj = torch.load(path, weights_only=True)
        meta = obj["meta"]
        assert (meta["cycle"], meta["step"], meta["global_step"]) == (c, e, e + 1)
        assert meta["lr"] == pytest.approx(used[e]) == pytest.approx(sched.lr_at(e, total, spe))
        # the weights right after step e, and the step before a restart or a trough of the LR
        for k, v in weights.after[e + 1].items():
            assert torch.equal(obj["state_dict"][k], v), k
        if isinstance(sched, SGDR) and e + 1 < total:
            assert used[e + 1] > used[e]


class StopAtEpoch(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = trainer.current_epoch == self.epoch


def test_infinite_training_saves_at_every_cycle_end(tmp_path):
    sched, snap = SGDR(max_lr=0.1, cycle_length=1.5), SnapshotEnsemble(dirpath=tmp_path / "s")
    trainer = make_trainer(tmp_path, [sched, snap, StopAtEpoch(4)], max_epochs=-1)
    trainer.fit(TinyModule(), make_loader(n=80))
    assert math.isinf(sched.fit_total_steps) and trainer.global_step == 50
    assert [r["step"] for r in snap.records] == [14, 29, 44] == sched.cycle_ends(50, 10)


def test_metadata_holds_latest_validation_metrics(tmp_path):
    snap = SnapshotEnsemble(dirpath=tmp_path / "s", evaluate=False)
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1)], max_epochs=3, limit_val_batches=None)
    trainer.fit(TinyModule(), make_loader(), make_loader(seed=1))
    metas = [torch.load(p, weights_only=True)["meta"] for p in snap.paths]
    assert "val_loss" not in metas[0]["val"]  # the first cycle ends before the first validation
    assert metas[2]["val"]["val_loss"] > 0 and metas[2]["val"] != metas[1]["val"]


def test_keep_deletes_older_snapshots(tmp_path):
    snap = SnapshotEnsemble(keep=2, dirpath=tmp_path / "s", in_memory=True)
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1)], max_epochs=5)
    trainer.fit(TinyModule(), make_loader())
    assert [r["step"] for r in snap.records] == [31, 39]
    assert files(tmp_path / "s") == ["cycle003-step00000031.pt", "cycle004-step00000039.pt"]
    assert sorted(snap._memory) == sorted(p.name for p in snap.paths)


def test_default_dirpath_is_in_the_log_dir(tmp_path):
    snap = SnapshotEnsemble()
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1)], max_epochs=2, logger=True)
    trainer.fit(TinyModule(), make_loader())
    assert Path(trainer.log_dir) == tmp_path / "lightning_logs" / "version_0"
    assert files(Path(trainer.log_dir) / "snapshots") == ["cycle000-step00000007.pt", "cycle001-step00000015.pt"]


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("schedule", [None, WarmupCosine])
def test_no_cyclic_schedule_fails_at_fit_start(tmp_path, schedule):
    callbacks = [SnapshotEnsemble(dirpath=tmp_path / "s")] + ([schedule(max_lr=0.1)] if schedule else [])
    weights = WeightRecorder()
    trainer = make_trainer(tmp_path, callbacks + [weights], max_epochs=1)
    with pytest.raises(ValueError, match="needs a cyclic schedule callback .SGDR or CyclicLR.") as err:
        trainer.fit(TinyModule(), make_loader())
    assert ("WarmupCosine" in str(err.value)) == (schedule is not None)
    assert weights.after == {} and trainer.global_step == 0 and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        ({"keep": 0}, ValueError, "keep=0"),
        ({"keep": 2.0}, TypeError, "keep=2.0"),
        ({"keep": True}, TypeError, "keep=True"),
        ({"dirpath": 3}, TypeError, "dirpath=3"),
        ({"in_memory": "yes"}, TypeError, "in_memory='yes'"),
        ({"task": "ranking"}, ValueError, "task='ranking'"),
    ],
)
def test_bad_arguments(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        SnapshotEnsemble(**kwargs)


# ---------------------------------------------------------------------- atomic writes
def test_failed_write_keeps_earlier_snapshots_and_leaves_no_temp_file(tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def flaky_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            f.write(b"half a snapshot")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(store.torch, "save", flaky_save)
    snap, weights = SnapshotEnsemble(dirpath=tmp_path / "s"), WeightRecorder()
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1), weights], max_epochs=5)
    with pytest.raises(OSError, match="disk full"):
        trainer.fit(TinyModule(), make_loader())
    monkeypatch.undo()
    # the failed third write left no temporary file (files() lists hidden ones too)
    assert files(tmp_path / "s") == ["cycle000-step00000007.pt", "cycle001-step00000015.pt"]
    for name, step in [("cycle000-step00000007.pt", 8), ("cycle001-step00000015.pt", 16)]:
        sd = torch.load(tmp_path / "s" / name, weights_only=True)["state_dict"]
        assert all(torch.equal(sd[k], v) for k, v in weights.after[step].items())


# ---------------------------------------------------------------------- ensemble evaluation
def reference_metrics(paths, loader, make_module=classifier):
    """Mean softmax of independently loaded snapshots: accuracy and NLL of the mean probability."""
    probs, ys = [], []
    for x, y in loader:
        ps = []
        for p in paths:
            m = make_module()
            m.load_state_dict(torch.load(p, weights_only=True)["state_dict"])
            m.eval()
            with torch.no_grad():
                ps.append(torch.softmax(m(x), -1))
        probs.append(sum(ps) / len(ps))
        ys.append(y)
    p, y = torch.cat(probs), torch.cat(ys)
    acc = (p.argmax(-1) == y).float().mean().item()
    nll = -torch.log(p[torch.arange(len(y)), y]).mean().item()
    return acc, nll, p


@pytest.mark.parametrize("in_memory", [False, True])
def test_validation_and_test_log_the_ensemble(tmp_path, in_memory, capsys):
    snap, weights = SnapshotEnsemble(keep=3, dirpath=tmp_path / "s", in_memory=in_memory), WeightRecorder()
    trainer = make_trainer(
        tmp_path, [snap, SGDR(max_lr=0.2, cycle_length=1), weights], max_epochs=5, limit_val_batches=None, logger=True
    )
    model = classifier()
    trainer.fit(model, class_loader(shuffle=True), class_loader(n=64, seed=1))
    assert len(snap.paths) == 3
    acc, nll, _ = reference_metrics(snap.paths, class_loader(n=64, seed=1))
    m = trainer.callback_metrics
    assert m["val/ensemble_acc"].item() == pytest.approx(acc, abs=1e-6)
    assert m["val/ensemble_loss"].item() == pytest.approx(nll, rel=1e-5)
    assert m["val/ensemble_size"].item() == 3 and "val/acc" in m
    out = capsys.readouterr().out
    assert "single model: val/acc=" in out and f"val/ensemble_acc={acc:.4f}" in out
    # the evaluation after the last step left the module's weights and buffers as they were
    final = model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in weights.after[trainer.global_step].items())
    (result,) = trainer.test(model, class_loader(n=48, seed=2), verbose=False)
    acc, nll, _ = reference_metrics(snap.paths, class_loader(n=48, seed=2))
    assert result["test/ensemble_acc"] == pytest.approx(acc, abs=1e-6)
    assert result["test/ensemble_loss"] == pytest.approx(nll, rel=1e-5)
    assert "test/acc" in result
    # the logged values reach TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(trainer.log_dir)
    ea.Reload()
    logged = ea.Scalars("val/ensemble_acc")
    assert len(logged) == 4  # validations after epochs 2..5 (two snapshots or more)
    assert logged[-1].value == pytest.approx(m["val/ensemble_acc"].item())


def test_regression_ensemble_is_the_mean_output(tmp_path):
    snap = SnapshotEnsemble(dirpath=tmp_path / "s")
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.05, cycle_length=1)], max_epochs=3, limit_val_batches=None)
    trainer.fit(TinyModule(), make_loader(), make_loader(seed=1))
    outs = []
    x, y = make_loader(seed=1).dataset.tensors
    for p in snap.paths:
        m = TinyModule()
        m.load_state_dict(torch.load(p, weights_only=True)["state_dict"])
        outs.append(m(x).detach())
    mse = ((sum(outs) / 3 - y) ** 2).mean().item()
    assert "val/ensemble_acc" not in trainer.callback_metrics
    assert trainer.callback_metrics["val/ensemble_loss"].item() == pytest.approx(mse, rel=1e-5)


def test_test_with_a_fresh_callback_reads_the_folder(tmp_path):
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=tmp_path / "s"), SGDR(max_lr=0.2, cycle_length=1)], max_epochs=4)
    model = classifier()
    trainer.fit(model, class_loader())
    tester = make_trainer(tmp_path, [SnapshotEnsemble(keep=2, dirpath=tmp_path / "s")])
    (result,) = tester.test(model, class_loader(n=48, seed=2), verbose=False)
    acc, nll, _ = reference_metrics(list_snapshots(tmp_path / "s")[-2:], class_loader(n=48, seed=2))
    assert result["test/ensemble_acc"] == pytest.approx(acc, abs=1e-6)
    assert result["test/ensemble_loss"] == pytest.approx(nll, rel=1e-5)
    assert result["test/ensemble_size"] == 2


# ---------------------------------------------------------------------- inference
def test_ensemble_module_is_the_mean_of_snapshot_probabilities(tmp_path):
    snap = SnapshotEnsemble(dirpath=tmp_path / "s", evaluate=False)
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.2, cycle_length=1)], max_epochs=3)
    trainer.fit(classifier(), class_loader(shuffle=True))
    test = class_loader(n=40, seed=3)
    _, _, expected = reference_metrics(snap.paths, test)
    ens = load_ensemble(tmp_path / "s", classifier(seed=5))
    assert len(ens.members) == 3 and [m["step"] for m in ens.metas] == [r["step"] for r in snap.records]
    with torch.no_grad():
        plain = torch.cat([ens(x) for x, _ in test])
    torch.testing.assert_close(plain, expected)
    assert torch.allclose(plain.sum(-1), torch.ones(len(plain)))
    predicted = torch.cat(make_trainer(tmp_path, []).predict(ens, test))
    torch.testing.assert_close(predicted, expected)
    last2 = load_ensemble(tmp_path / "s", classifier(), keep=2)
    with torch.no_grad():
        torch.testing.assert_close(torch.cat([last2(x) for x, _ in test]), reference_metrics(snap.paths[-2:], test)[2])


def test_load_ensemble_errors(tmp_path):
    with pytest.raises(ValueError, match="holds no snapshots"):
        load_ensemble(tmp_path, classifier())
    (tmp_path / "cycle000-step00000001.pt").write_bytes(b"")
    torch.save({"weights": torch.ones(1)}, tmp_path / "cycle000-step00000001.pt")
    with pytest.raises(ValueError, match="not an lr-plugins snapshot"):
        load_ensemble(tmp_path, classifier())


# ---------------------------------------------------------------------- resume
class StopAfterEpoch(L.Callback):
    def __init__(self, epoch, path):
        self.epoch, self.path = epoch, path

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True


def test_resume_gives_the_uninterrupted_snapshot_list(tmp_path):
    def run(root, extra, ckpt=None):
        snap = SnapshotEnsemble(keep=3, dirpath=root / "s")
        trainer = make_trainer(root, [snap, SGDR(max_lr=0.1, cycle_length=1.5)] + extra, max_epochs=8)
        torch.manual_seed(0)
        trainer.fit(TinyModule(), make_loader(), ckpt_path=ckpt)
        return snap

    ref = run(tmp_path / "a", [])
    ckpt = tmp_path / "b" / "epoch3.ckpt"
    first = run(tmp_path / "b", [StopAfterEpoch(3, ckpt)])
    assert [r["step"] for r in first.records] == [11, 23]  # cycle 2 ends mid-epoch 4, after the stop
    resumed = run(tmp_path / "b", [], ckpt=str(ckpt))
    steps = [r["step"] for r in ref.records]
    assert steps == [35, 47, 59] == [r["step"] for r in resumed.records]
    assert files(tmp_path / "a" / "s") == files(tmp_path / "b" / "s")
    assert resumed.run_id == first.run_id != ref.run_id  # the resumed run is the first one, continued
    for pa, pb in zip(ref.paths, resumed.paths):
        a, b = torch.load(pa, weights_only=True), torch.load(pb, weights_only=True)
        assert a["meta"].pop("run") == ref.run_id and b["meta"].pop("run") == first.run_id
        assert a["meta"] == b["meta"]
        for k in a["state_dict"]:
            torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k])


class SaveAtEpoch(L.Callback):
    def __init__(self, epoch, path):
        self.epoch, self.path = epoch, path

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.save_checkpoint(self.path)


def test_resume_after_the_run_went_on_warns_about_deleted_snapshots(tmp_path):
    # The run continued past its checkpoint and keep=1 deleted the snapshot the checkpoint lists.
    ckpt = tmp_path / "epoch1.ckpt"
    snap = SnapshotEnsemble(keep=1, dirpath=tmp_path / "s")
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1), SaveAtEpoch(1, ckpt)], max_epochs=4)
    trainer.fit(TinyModule(), make_loader())
    assert files(tmp_path / "s") == ["cycle003-step00000031.pt"]
    snap = SnapshotEnsemble(keep=1, dirpath=tmp_path / "s")
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1)], max_epochs=4)
    with pytest.warns(UserWarning, match="1 snapshot.s. recorded in the checkpoint are missing, unreadable or do not fit"):
        trainer.fit(TinyModule(), make_loader(), ckpt_path=str(ckpt))
    assert [r["step"] for r in snap.records] == [31]
    assert files(tmp_path / "s") == ["cycle003-step00000031.pt"]


# ---------------------------------------------------------------------- DDP
class CountingSnapshot(SnapshotEnsemble):
    """Appends 'rank step' to a log for every file it writes."""

    def _write(self, dirpath, state_dict, meta):
        with open(Path(dirpath).parent / "writes.log", "a") as f:
            f.write(f"{int(os.environ.get('LOCAL_RANK', 0))} {meta['step']}\n")
        return super()._write(dirpath, state_dict, meta)


def test_ddp_writes_each_snapshot_once(tmp_path):
    snap = CountingSnapshot(dirpath=tmp_path / "s")
    trainer = make_trainer(
        tmp_path,
        [snap, SGDR(max_lr=0.2, cycle_length=1.5)],
        max_epochs=4,
        devices=2,
        strategy="ddp_spawn",
        limit_val_batches=None,
    )
    trainer.fit(classifier(), class_loader(n=96, batch_size=8), class_loader(n=64, seed=1))
    # 96 samples / 2 ranks / batch 8 = 6 steps per epoch; cycles of 9 steps
    assert SGDR(cycle_length=1.5).cycle_ends(24, 6) == [8, 17]
    lines = (tmp_path / "writes.log").read_text().split()
    assert lines == ["0", "8", "0", "17"]
    assert files(tmp_path / "s") == ["cycle000-step00000008.pt", "cycle001-step00000017.pt"]
    acc, nll, _ = reference_metrics(sorted((tmp_path / "s").iterdir()), class_loader(n=64, seed=1))
    assert trainer.callback_metrics["val/ensemble_acc"].item() == pytest.approx(acc, abs=1e-6)
    assert trainer.callback_metrics["val/ensemble_loss"].item() == pytest.approx(nll, rel=1e-5)


# ---------------------------------------------------------------------- Hydra config
def test_hydra_config_instantiates_with_the_class_defaults():
    import inspect

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import lr_plugins

    cfg = OmegaConf.load(Path(lr_plugins.__file__).parent / "conf" / "snapshot" / "ensemble.yaml")
    params = inspect.signature(SnapshotEnsemble.__init__).parameters
    assert {k: v for k, v in cfg.items() if k != "_target_"} == {k: p.default for k, p in params.items() if k != "self"}
    snap = instantiate(cfg, keep=4)
    assert isinstance(snap, SnapshotEnsemble) and snap.keep == 4 and snap.dirpath is None


# ---------------------------------------------------------------------- docstrings
@pytest.mark.parametrize("name", ["store", "ensemble", "evaluate", "callback", "__init__"])
def test_docstring_examples_run_and_use_only_the_library(name):
    import doctest
    import importlib

    module = importlib.import_module("lr_plugins.snapshot" + ("" if name == "__init__" else f".{name}"))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0
    assert "lr_plugins.app" not in Path(module.__file__).read_text()  # the library's examples need no app


# ---------------------------------------------------------------------- a re-planned fit (issue 17.5/17.6)
def snapshot_steps(d, start=0):
    return [store.parse_name(p.name)[1] for p in list_snapshots(d) if store.parse_name(p.name)[1] >= start]


def restarts(lrs, start=0):
    """The steps after which the applied LR jumps up (an SGDR restart): the last step of each cycle."""
    return [start + i for i in range(len(lrs) - 1) if lrs[i + 1] > lrs[i]]


def replanned_fit(tmp_path, schedule, callbacks=(), ckpt_path=None, module=None, **kwargs):
    from test_callback_resume import SaveAt

    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, SnapshotEnsemble(dirpath=tmp_path / "snaps", evaluate=False,
                                                                  verbose=False), rec, SaveAt(tmp_path, (16, 12)),
                                      *callbacks], **kwargs)
    torch.manual_seed(0)
    trainer.fit(module or TinyModule(), make_loader(), ckpt_path=ckpt_path)
    return trainer, [x[0] for x in rec.lrs]


def test_snapshots_follow_the_warped_cycles_after_a_resume_with_more_accumulation(tmp_path):
    """SGDR of 1.5 epochs, 8 steps/epoch; resumed at step 16 with accumulate 2: v(k) = 16 + 2 (k - 16)."""
    replanned_fit(tmp_path, SGDR(max_lr=0.1, cycle_length=1.5), max_epochs=5, max_steps=16)
    trainer, lrs = replanned_fit(tmp_path, SGDR(max_lr=0.1, cycle_length=1.5), max_epochs=5,
                                 accumulate_grad_batches=2, ckpt_path=tmp_path / "step=16.ckpt")
    assert trainer.global_step == 28 and len(lrs) == 12
    # curve steps 24 and 36 start cycles 2 and 3: real steps 20 and 26, so steps 19 and 25 end cycles
    assert restarts(lrs, 16) == [19, 25]
    assert snapshot_steps(tmp_path / "snaps") == [11, 19, 25]
    assert [store.parse_name(p.name)[0] for p in list_snapshots(tmp_path / "snaps")] == [0, 1, 2]


def test_snapshots_follow_a_gradient_accumulation_scheduler(tmp_path):
    """{0: 1, 2: 4}: 8 steps per epoch, then 2; SGDR of 1.75 epochs restarts at epoch 1.75 and 3.5 (steps 14 and 19)."""
    sgdr = SGDR(max_lr=0.1, cycle_length=1.75)
    trainer, lrs = replanned_fit(tmp_path, sgdr, [GradientAccumulationScheduler({0: 1, 2: 4})], max_epochs=4)
    assert trainer.global_step == 20
    assert restarts(lrs) == [13, 18]
    assert snapshot_steps(tmp_path / "snaps") == [13, 18]


def test_snapshots_follow_a_continued_plan(tmp_path):
    """Cycles of a quarter of the training, 32 steps, resumed at 12 with 48: v(k) = 12 + (k - 12) 20 / 36."""
    make = lambda: SGDR(max_lr=0.1, cycle_length=0.25, unit="fraction", on_length_change="continue")  # noqa: E731
    from test_callback import StopAt

    replanned_fit(tmp_path, make(), [StopAt(12)], max_epochs=4)
    trainer, lrs = replanned_fit(tmp_path, make(), max_epochs=6, ckpt_path=tmp_path / "step=12.ckpt")
    assert trainer.global_step == 48
    assert restarts(lrs, 12) == [19, 33]  # v = 16 and 24 at k = 19.2 and 33.6
    # the last cycle ends with the training (v(48) = 32): the last step is at its trough
    v = 12 + (47 - 12) * 20 / 36  # 31.4: the last cycle's cosine (steps 24..32 of the curve), near its trough
    assert snapshot_steps(tmp_path / "snaps", 12) == [19, 33, 47]
    assert lrs[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * (v - 24) / 8)) / 2, rel=1e-12)


def test_snapshots_count_the_scheduled_optimizers_steps_under_manual_optimization(tmp_path):
    """Two optimizers stepping per batch: global_step counts both, the schedule (and its cycles) the first."""
    from test_callback_lifecycle import TwoOptimizers

    module = TwoOptimizers()
    trainer, _ = replanned_fit(tmp_path, SGDR(max_lr=0.1, cycle_length=1.5), module=module, max_epochs=4)
    assert trainer.global_step == 64 and len(module.lrs) == 32
    assert restarts(module.lrs) == [11, 23]
    assert snapshot_steps(tmp_path / "snaps") == [11, 23]


@pytest.mark.parametrize("snapshot_first", [False, True])
def test_the_no_cycle_end_warning_reads_the_resumed_fits_plan_in_any_callback_order(tmp_path, snapshot_first):
    """SGDR of 3.5 epochs resumed at epoch 2 of 4 with accumulate 2: epoch time 2..4 holds the end at 3.5
    (real steps 16..23 priced at today's 4 steps per epoch would be epochs 4..6, which hold none)."""
    import warnings

    from test_callback import StopAt
    from test_callback_resume import SaveAt

    def fit(path, ckpt_path=None, stop=False, **kwargs):
        snap = SnapshotEnsemble(dirpath=tmp_path / "snaps", evaluate=False, verbose=False)
        sgdr = SGDR(max_lr=0.1, cycle_length=3.5)
        first = [snap, sgdr] if snapshot_first else [sgdr, snap]
        stops = [StopAt(16)] if stop else []
        trainer = make_trainer(path, [*first, SaveAt(tmp_path, [16]), *stops], max_epochs=4, **kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(TinyModule(), make_loader(), ckpt_path=ckpt_path)
        return [str(w.message) for w in caught if "will save no snapshot" in str(w.message)]

    assert fit(tmp_path / "a", stop=True) == []
    assert fit(tmp_path / "b", ckpt_path=tmp_path / "step=16.ckpt", accumulate_grad_batches=2) == []
    assert snapshot_steps(tmp_path / "snaps") == [21]  # epoch 3.5 = curve step 28 = v(22): step 21 ends the cycle
