"""SnapshotEnsemble safety (issue 12 items 2, 6, 7, 9): paths from a checkpoint, the folder checked
before any step, members lost mid-training, malformed resume state, kill -9 leftovers."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from conftest import TinyModule, make_loader, make_trainer
from test_snapshot import StopAfterEpoch, WeightRecorder, class_loader, classifier, files, reference_metrics
from torch import nn

import lr_plugins.snapshot.store as store
from lr_plugins import SGDR, CyclicLR, SnapshotEnsemble
from lr_plugins.snapshot import list_snapshots, load_ensemble, load_snapshot


def tree(root: Path) -> dict[str, str]:
    """Every file below ``root`` with the hash of its content (links listed by target)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "-> " + str(p.readlink())
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def state_key(ckpt: dict) -> str:
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("SnapshotEnsemble")]
    return key


def first_run(root: Path, keep=None, epochs=2, dirpath=None):
    """Train SGDR(cycle 1 epoch, 8 steps) for ``epochs + 1`` epochs, checkpoint and stop: snapshots 7, 15, ..."""
    ckpt = root / "stop.ckpt"
    snap = SnapshotEnsemble(keep=keep, dirpath=dirpath)
    trainer = make_trainer(root, [snap, SGDR(max_lr=0.1, cycle_length=1), StopAfterEpoch(epochs, ckpt)], max_epochs=8)
    trainer.fit(TinyModule(), make_loader())
    return snap, ckpt


def resume(root: Path, ckpt, keep=None, epochs=6, dirpath=None, extra=()):
    snap = SnapshotEnsemble(keep=keep, dirpath=dirpath)
    trainer = make_trainer(root, [snap, SGDR(max_lr=0.1, cycle_length=1), *extra], max_epochs=epochs)
    trainer.fit(TinyModule(), make_loader(), ckpt_path=str(ckpt))
    return snap, trainer


# ---------------------------------------------------------------------- item 2: paths from a checkpoint
@pytest.mark.parametrize("key", ["path", "file"])  # "path": how checkpoints stored records before
def test_crafted_records_cannot_reach_files_outside_the_folder(tmp_path, key):
    run, outside = tmp_path / "run", tmp_path / "outside"
    snap, ckpt = first_run(run, dirpath=run / "s")
    assert [r["step"] for r in snap.records] == [7, 15, 23]
    # victims named like snapshots, outside the snapshot folder, and a plain file
    (outside / "deep").mkdir(parents=True)
    victims = [outside / "cycle000-step00000007.pt", outside / "cycle001-step00000015.pt", outside / "victim.txt"]
    for v in victims:
        shutil.copy(snap.paths[0], v) if v.suffix == ".pt" else v.write_text("precious")
    before = tree(outside)
    state = torch.load(ckpt, weights_only=False)
    state["callbacks"][state_key(state)]["records"] = [
        {"cycle": 0, "step": 7, key: str(victims[0].absolute())},  # /abs/file
        {"cycle": 1, "step": 15, key: f"{run / 's'}/../../outside/cycle001-step00000015.pt"},  # <snapdir>/../../file
        {"cycle": 2, "step": 23, key: str(victims[2])},  # not a snapshot name
    ]
    torch.save(state, ckpt)
    with pytest.warns(UserWarning, match="3 snapshot record.s. of the checkpoint are refused") as rec:
        resumed, _ = resume(run, ckpt, keep=1, dirpath=run / "s")
    (message,) = [str(w.message) for w in rec if "refused" in str(w.message)]
    assert "cycle000-step00000007.pt" in message and "victim.txt" in message
    # keep=1 evicted every member it had: never the refused files
    assert tree(outside) == before
    assert [r["step"] for r in resumed.records] == [47] and files(run / "s")[-1] == "cycle005-step00000047.pt"


def test_refused_record_whose_name_does_not_match_its_cycle_and_step(tmp_path):
    _, ckpt = first_run(tmp_path, dirpath=tmp_path / "s")
    state = torch.load(ckpt, weights_only=False)
    records = state["callbacks"][state_key(state)]["records"]
    assert records == [{"cycle": c, "step": e, "file": f"cycle{c:03d}-step{e:08d}.pt"} for c, e in [(0, 7), (1, 15), (2, 23)]]
    records[0]["step"] = 8  # the name says step 7
    torch.save(state, ckpt)
    with pytest.warns(UserWarning, match="1 snapshot record.s. of the checkpoint are refused"):
        resumed, _ = resume(tmp_path, ckpt, dirpath=tmp_path / "s", epochs=4)
    assert [r["step"] for r in resumed.records] == [15, 23, 31]


def test_resuming_a_copied_run_leaves_the_original_untouched(tmp_path):
    run_a, run_b = tmp_path / "runA", tmp_path / "runB"
    snap, _ = first_run(run_a, keep=2)  # dirpath=None: <default_root_dir>/snapshots
    assert snap.paths[0].parent == run_a / "snapshots"
    shutil.copytree(run_a, run_b)
    before = tree(tmp_path)
    resumed, _ = resume(run_b, run_b / "stop.ckpt", keep=2)
    not_b = lambda t: {k: v for k, v in t.items() if not k.startswith("runB")}  # noqa: E731
    assert not_b(tree(tmp_path)) == not_b(before) and "runA/snapshots/cycle002-step00000023.pt" in before
    assert [r["step"] for r in resumed.records] == [39, 47]
    assert [p.parent for p in resumed.paths] == [run_b / "snapshots"] * 2
    assert files(run_b / "snapshots") == ["cycle004-step00000039.pt", "cycle005-step00000047.pt"]


# ---------------------------------------------------------------------- issue 17.8: ownership on resume
@pytest.mark.parametrize("checkpoint", ["another run's", "without snapshot state"])
def test_resuming_into_another_runs_snapshot_folder_is_refused_and_leaves_it_untouched(tmp_path, checkpoint):
    """Run B's folder holds snapshots with the very names run A's checkpoint records: the resume used to adopt
    them as A's members and overwrite B's later ones. Now it is refused before any step, with one line naming
    the folder, and B's files stay as they were."""
    _, ckpt = first_run(tmp_path / "a", dirpath=tmp_path / "a" / "s")
    b, _ = first_run(tmp_path / "b", dirpath=tmp_path / "b" / "s")
    if checkpoint == "without snapshot state":
        state = torch.load(ckpt, weights_only=False)
        del state["callbacks"][state_key(state)]
        torch.save(state, ckpt)
    before = tree(tmp_path / "b" / "s")
    weights = WeightRecorder()
    with pytest.raises(ValueError, match=re.escape(f"resuming into the snapshot folder '{tmp_path / 'b' / 's'}' is not "
                                                   "allowed: it holds 3 snapshot file(s) this run did not write")) as err:
        resume(tmp_path / "a", ckpt, dirpath=tmp_path / "b" / "s", extra=[weights])
    assert "\n" not in str(err.value) and weights.after == {}
    assert tree(tmp_path / "b" / "s") == before
    assert {load_snapshot(p)["meta"]["run"] for p in b.paths} == {b.run_id}


def test_a_resume_owns_exactly_the_files_carrying_its_run_id(tmp_path):
    """The checkpoint and every snapshot carry the run id; the resumed run takes it over, adopts its own
    records, and a file of any other run in the folder is refused even where no name collides."""
    snap, ckpt = first_run(tmp_path, dirpath=tmp_path / "s")
    state = torch.load(ckpt, weights_only=True)
    assert state["callbacks"][state_key(state)]["run"] == snap.run_id and len(snap.run_id) == 32
    resumed, _ = resume(tmp_path, ckpt, dirpath=tmp_path / "s")
    assert resumed.run_id == snap.run_id
    assert [r["step"] for r in resumed.records] == [7, 15, 23, 31, 39, 47]
    assert {load_snapshot(p)["meta"]["run"] for p in resumed.paths} == {snap.run_id}
    # one foreign file beside them, under a name the run would never write: still refused (it would be mixed in)
    foreign = tmp_path / "s" / "cycle099-step00009999.pt"
    store.save_snapshot(tmp_path / "s", TinyModule().state_dict(), {"cycle": 99, "step": 9999, "run": "f" * 32})
    with pytest.raises(ValueError, match=r"holds 1 snapshot file\(s\) this run did not write \(cycle099-step00009999.pt"):
        resume(tmp_path, ckpt, dirpath=tmp_path / "s")
    assert foreign.exists()


def test_a_checkpoints_run_id_is_checked(tmp_path):
    snap = SnapshotEnsemble()
    with pytest.raises(ValueError, match=r"\['run'\]=5 is not allowed: it must be a run id of 32 hex digits"):
        snap.load_state_dict({"records": [], "run": 5})


# ---------------------------------------------------------------------- item 6: checked at fit start
def _unwritable(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    return d / "snaps"


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda t: (t / "a_file").write_text("x") and t / "a_file", "it is a file, not a folder"),
        (lambda t: (t / "a_file").write_text("x") and t / "a_file" / "snaps", "{t}/a_file is a file, not a folder"),
        (lambda t: Path("/proc/lr_plugins_no_such_folder/snaps"), "/proc cannot be written"),
        pytest.param(
            _unwritable, "{t}/ro/snaps cannot be written (PermissionError",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere"),
        ),
    ],
    ids=["file", "under-a-file", "proc", "read-only"],
)
def test_bad_dirpath_fails_before_any_step(tmp_path, make, reason):
    dirpath = make(tmp_path)
    before = tree(tmp_path)
    weights = WeightRecorder()
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=dirpath), SGDR(max_lr=0.1, cycle_length=1), weights], max_epochs=3)
    reason = reason.format(t=tmp_path)  # the words of lr_plugins.files.unwritable_reason, the one folder probe
    with pytest.raises(ValueError, match=re.escape(f"dirpath='{dirpath}' is not allowed: {reason}")) as err:
        trainer.fit(TinyModule(), make_loader())
    assert "\n" not in str(err.value)
    assert weights.after == {} and trainer.global_step == 0
    assert tree(tmp_path) == before


def test_a_new_fit_refuses_a_folder_with_another_runs_snapshots(tmp_path):
    first_run(tmp_path, dirpath=tmp_path / "s")
    before = tree(tmp_path / "s")
    weights = WeightRecorder()
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=tmp_path / "s"), SGDR(max_lr=0.1, cycle_length=1), weights], max_epochs=3)
    with pytest.raises(ValueError, match="already holds 3 snapshot.s. of an earlier run .cycle000-step00000007.pt"):
        trainer.fit(TinyModule(), make_loader())
    assert weights.after == {} and tree(tmp_path / "s") == before


def test_the_same_callback_may_fit_again_into_its_folder(tmp_path):
    snap = SnapshotEnsemble(dirpath=tmp_path / "s")
    for _ in range(2):
        trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1)], max_epochs=2)
        trainer.fit(TinyModule(), make_loader())
    assert files(tmp_path / "s") == ["cycle000-step00000007.pt", "cycle001-step00000015.pt"]


def test_a_fit_refused_at_fit_start_leaves_no_snapshot_folder(tmp_path):
    # SGDR refuses a warmup longer than training after SnapshotEnsemble created its folder.
    dirpath = tmp_path / "new" / "deeper" / "s"
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=dirpath), SGDR(max_lr=0.1, cycle_length=1, warmup=5)], max_epochs=2)
    with pytest.raises(ValueError, match="warmup"):
        trainer.fit(TinyModule(), make_loader())
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "schedule, epochs",
    [
        (lambda: SGDR(max_lr=0.1, cycle_length=4), 3),  # the first cycle ends after the fit
        (lambda: SGDR(max_lr=0.1, cycle_length=3), 3),  # ... exactly at its last step
        (lambda: SGDR(max_lr=0.1, cycle_length=1, warmup=2), 3),  # warmup, then one cycle
        (lambda: SGDR(max_lr=0.1, cycle_length=1.5, warmup=2), 3),  # warmup, then half a cycle
        (lambda: CyclicLR(max_lr=0.1, min_lr=0.01, step_size=2, cycle_momentum=False), 3),
        (lambda: CyclicLR(max_lr=0.1, min_lr=0.01, step_size=1.5, cycle_momentum=False), 3),
    ],
)
def test_a_fit_that_can_never_save_warns_at_fit_start(tmp_path, schedule, epochs):
    sched = schedule()
    snap = SnapshotEnsemble(dirpath=tmp_path / "s")
    trainer = make_trainer(tmp_path, [snap, sched], max_epochs=epochs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyModule(), make_loader())
    warned = [w for w in caught if "will save no snapshot" in str(w.message)]
    expected = sched.cycle_ends(trainer.global_step, sched.fit_steps_per_epoch)  # the reference
    assert len(warned) == (0 if expected else 1)
    assert [r["step"] for r in snap.records] == expected


# ---------------------------------------------------------------------- item 7: members lost mid-training
class Sabotage(L.Callback):
    """After training epoch ``epoch``, deletes one snapshot and truncates another."""

    def __init__(self, snap, epoch, how):
        self.snap, self.epoch, self.how = snap, epoch, how

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch != self.epoch or not trainer.is_global_zero:
            return
        first, second = self.snap.paths[:2]
        if "delete" in self.how:
            first.unlink()
        if "truncate" in self.how:
            data = second.read_bytes()
            second.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["delete+truncate"])  # one fit checks both ways of losing a member
def test_a_snapshot_lost_mid_training_is_left_out(tmp_path, how):
    snap = SnapshotEnsemble(dirpath=tmp_path / "s", keep=4)
    trainer = make_trainer(
        tmp_path, [snap, SGDR(max_lr=0.2, cycle_length=1), Sabotage(snap, 2, how)], max_epochs=5, limit_val_batches=None
    )
    lost = {"delete": ["cycle000-step00000011.pt"], "truncate": ["cycle001-step00000023.pt"]}
    lost["delete+truncate"] = lost["delete"] + lost["truncate"]
    with pytest.warns(UserWarning, match=f"{len(lost[how])} snapshot.s. deleted or damaged during training") as rec:
        trainer.fit(classifier(), class_loader(), class_loader(n=64, seed=1))
    message = str([w.message for w in rec if "damaged" in str(w.message)][0])
    assert all(name in message for name in lost[how])
    assert trainer.current_epoch == 5  # the fit went on to the end
    kept = list(snap.paths)
    assert not set(lost[how]) & {p.name for p in kept}
    acc, nll, _ = reference_metrics(kept, class_loader(n=64, seed=1))
    m = trainer.callback_metrics
    assert m["val/ensemble_size"].item() == len(kept) == 4 - len(lost[how]) + 1
    assert m["val/ensemble_acc"].item() == pytest.approx(acc, abs=1e-6)
    assert m["val/ensemble_loss"].item() == pytest.approx(nll, rel=1e-5)


def test_load_ensemble_and_load_snapshot_name_the_bad_file(tmp_path):
    snap, _ = first_run(tmp_path, dirpath=tmp_path / "s")
    good, half, foreign = snap.paths
    data = half.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"snapshot '{half}' cannot be read .truncated or corrupt"):
        load_ensemble(tmp_path / "s", TinyModule())
    with pytest.raises(ValueError, match=f"snapshot '{half}' cannot be read"):
        load_snapshot(half)
    with pytest.raises(FileNotFoundError, match=f"snapshot '{tmp_path / 'nope.pt'}' does not exist"):
        load_snapshot(tmp_path / "nope.pt")
    half.unlink()
    torch.save({"format": store.FORMAT, "state_dict": {"w": "not a tensor"}, "meta": {}}, foreign)
    with pytest.raises(ValueError, match=f"'{foreign}': 'state_dict' must be a dict of tensors"):
        load_ensemble(tmp_path / "s", TinyModule())
    foreign.unlink()
    with pytest.raises(ValueError, match=f"snapshot '{good}' does not fit the module Linear"):
        load_ensemble(tmp_path / "s", nn.Linear(3, 3))


# ---------------------------------------------------------------------- item 9: malformed state, leftovers
@pytest.mark.parametrize(
    "records, text",
    [
        ("all", r"\['records'\]='all' is not allowed: it must be a list"),
        ([3], r"\['records'\]\[0\]=3 is not allowed: it must be a dict"),
        ([{"cycle": "0", "step": 7, "file": "cycle000-step00000007.pt"}], r"\['records'\]\[0\]\['cycle'\]='0' is not allowed"),
        ([{"cycle": 0, "step": -7, "file": "cycle000-step00000007.pt"}], r"\['records'\]\[0\]\['step'\]=-7 is not allowed: it must be an integer >= 0"),
        ([{"cycle": 0, "step": True, "file": "cycle000-step00000007.pt"}], r"\['records'\]\[0\]\['step'\]=True is not allowed"),
        ([{"cycle": 0, "step": 7}], r"\['records'\]\[0\]\['file'\]=None is not allowed"),
        ([{"cycle": 0, "step": 7, "file": 5}], r"\['records'\]\[0\]\['file'\]=5 is not allowed"),
        (None, r"\['records'\]=None is not allowed"),
    ],
)
def test_malformed_resume_state_names_the_key(tmp_path, records, text):
    _, ckpt = first_run(tmp_path, dirpath=tmp_path / "s")
    state = torch.load(ckpt, weights_only=False)
    key = state_key(state)
    state["callbacks"][key] = {"records": records} if records is not None else {"dirpath": "x"}
    torch.save(state, ckpt)
    weights = WeightRecorder()
    with pytest.raises(ValueError, match=r"checkpoint\['callbacks'\]\[SnapshotEnsemble\]" + text) as err:
        resume(tmp_path, ckpt, dirpath=tmp_path / "s", extra=[weights])
    assert "\n" not in str(err.value) and weights.after == {}


def test_state_that_is_not_a_dict_is_refused(tmp_path):
    snap = SnapshotEnsemble()
    with pytest.raises(ValueError, match=r"checkpoint\['callbacks'\]\[SnapshotEnsemble\]=\[1, 2\] is not allowed"):
        snap.load_state_dict([1, 2])


def real_temp_name(tmp_path, monkeypatch) -> str:
    """The temporary name the atomic writer really uses for a snapshot (caught mid-write)."""
    seen = []

    def failing_save(obj, f, *a, **k):
        seen.extend(p.name for p in Path(tmp_path).iterdir())
        raise OSError("killed")

    monkeypatch.setattr(store.torch, "save", failing_save)
    with pytest.raises(OSError):
        store.save_snapshot(tmp_path, {}, {"cycle": 1, "step": 15})
    monkeypatch.undo()
    (name,) = seen
    return name


def test_kill_leftovers_are_removed_at_the_next_start_and_nothing_else(tmp_path, monkeypatch):
    d = tmp_path / "s"
    d.mkdir()
    leftover = real_temp_name(d, monkeypatch)
    assert leftover.startswith(".cycle001-step00000015.pt.") and leftover.endswith(".tmp")
    (d / leftover).write_bytes(b"half a snapshot")
    others = [".other.pt.abcdefgh.tmp", "cycle000-step00000007.pt.tmp", ".cycle000-step00000007.pt.ABCDEFGH.tmp", "notes.tmp"]
    for name in others:
        (d / name).write_text("not ours")
    (d / ".cycle000-step00000007.pt.abcdefgh.tmp").mkdir()  # a folder with our pattern is not a leftover file
    with pytest.warns(UserWarning, match=r"removed 1 unfinished snapshot write"):
        trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=d), SGDR(max_lr=0.1, cycle_length=1)], max_epochs=2)
        trainer.fit(TinyModule(), make_loader())
    assert sorted(files(d)) == sorted(others + [".cycle000-step00000007.pt.abcdefgh.tmp",
                                                 "cycle000-step00000007.pt", "cycle001-step00000015.pt"])


# ---------------------------------------------------------------------- DDP: 2 processes, a real logger
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_with_a_logger_leaves_out_a_member_deleted_on_rank_0(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    snap = SnapshotEnsemble()  # dirpath=None: <trainer.log_dir>/snapshots, a collective under DDP
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = make_trainer(
        tmp_path,
        [snap, SGDR(max_lr=0.2, cycle_length=1), Sabotage(snap, 1, "delete")],
        max_epochs=4, devices=2, strategy="ddp_spawn", limit_val_batches=None, logger=logger,
    )
    trainer.fit(classifier(), class_loader(n=96, batch_size=8), class_loader(n=64, seed=1))
    folder = tmp_path / "tb" / "version_0" / "snapshots"
    # 96 samples / 2 ranks / batch 8 = 6 steps per epoch: cycle ends 5, 11, 17, 23; step 5 deleted after epoch 1
    assert files(folder) == ["cycle001-step00000011.pt", "cycle002-step00000017.pt", "cycle003-step00000023.pt"]
    acc, nll, _ = reference_metrics(list_snapshots(folder), class_loader(n=64, seed=1))
    assert trainer.callback_metrics["val/ensemble_acc"].item() == pytest.approx(acc, abs=1e-6)
    assert trainer.callback_metrics["val/ensemble_loss"].item() == pytest.approx(nll, rel=1e-5)
    ea = EventAccumulator(str(tmp_path / "tb" / "version_0"))
    ea.Reload()
    assert [e.value for e in ea.Scalars("val/ensemble_size")] == [2, 2, 3]  # epochs 1, 2 (5 left out), 3


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_refuses_a_bad_dirpath_on_every_rank_without_hanging(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    (tmp_path / "a_file").write_text("x")
    weights = WeightRecorder()
    trainer = make_trainer(
        tmp_path,
        [SnapshotEnsemble(dirpath=tmp_path / "a_file"), SGDR(max_lr=0.2, cycle_length=1), weights],
        max_epochs=2, devices=2, strategy="ddp_spawn", logger=TensorBoardLogger(tmp_path, name="tb"),
    )
    with pytest.raises(Exception, match="dirpath='.*a_file' is not allowed: it is a file, not a folder"):
        trainer.fit(classifier(), class_loader(n=96, batch_size=8))
    assert (tmp_path / "a_file").read_text() == "x"


# ---------------------------------------------------------------------- issue 17.11: unsized loaders, full disks
class Stream(torch.utils.data.IterableDataset):
    """64 regression samples with no ``__len__``: Lightning cannot tell the steps per epoch."""

    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(64):
            x = torch.randn(4, generator=g)
            yield x, x.sum(0, keepdim=True)


@pytest.mark.parametrize("schedule", [
    lambda: SGDR(max_lr=0.1, cycle_length=8, unit="step"),
    lambda: CyclicLR(max_lr=0.1, min_lr=0.01, step_size=3, unit="step", cycle_momentum=False),
], ids=["SGDR", "CyclicLR"])
def test_an_unsized_train_loader_with_step_cycles_saves_at_every_cycle_end(tmp_path, schedule):
    """Cycles in optimizer steps need no steps per epoch: the snapshots land on the schedule's own cycle ends
    (24 steps: 3 epochs of 8 batches, counted by the Trainer)."""
    sched = schedule()
    snap = SnapshotEnsemble(dirpath=tmp_path / "s")
    trainer = make_trainer(tmp_path, [snap, sched], max_epochs=3)
    trainer.fit(TinyModule(), torch.utils.data.DataLoader(Stream(), batch_size=8))
    assert trainer.global_step == 24
    expected = sched.cycle_ends(24, 1.0)  # the reference: the pure curve, any steps per epoch
    assert expected and [r["step"] for r in snap.records] == expected
    assert [p.name for p in list_snapshots(tmp_path / "s")] == [f"cycle{c:03d}-step{e:08d}.pt" for c, e in
                                                                 ((sched.cycle_at(e, 1.0), e) for e in expected)]


def test_an_unsized_train_loader_with_epoch_cycles_is_refused_before_any_step(tmp_path):
    weights = WeightRecorder()
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=tmp_path / "s"), SGDR(max_lr=0.1, cycle_length=1), weights],
                           max_epochs=3)
    with pytest.raises(ValueError, match=r"^unit='epoch' is not allowed with a train dataloader that has no length") as e:
        trainer.fit(TinyModule(), torch.utils.data.DataLoader(Stream(), batch_size=8))
    assert "\n" not in str(e.value) and weights.after == {} and not (tmp_path / "s").exists()


def _enospc(real):
    def replace(src, dst):
        if str(dst).endswith("cycle001-step00000015.pt"):
            raise OSError(28, "No space left on device")
        return real(src, dst)
    return replace


def _eperm(real):  # what chattr +i on the target gives (chattr itself may be unavailable)
    def replace(src, dst):
        if str(dst).endswith("cycle001-step00000015.pt"):
            raise PermissionError(1, "Operation not permitted")
        return real(src, dst)
    return replace


class DirInTheWay(L.Callback):
    """After the first snapshot, a folder appears under the name of the next one."""

    def __init__(self, folder):
        self.folder = folder

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            (self.folder / "cycle001-step00000015.pt").mkdir()


@pytest.mark.parametrize("how, text", [
    ("full", "the disk is full (No space left on device)"),
    ("immutable", "PermissionError: Operation not permitted"),
    ("folder", "IsADirectoryError: Is a directory"),
])
def test_a_failed_snapshot_write_says_why_and_keeps_the_earlier_ones(tmp_path, monkeypatch, how, text):
    import lr_plugins.files as files_module

    extra = []
    if how == "folder":
        extra = [DirInTheWay(tmp_path / "s")]
    else:
        monkeypatch.setattr(files_module.os, "replace", (_enospc if how == "full" else _eperm)(os.replace))
    snap, weights = SnapshotEnsemble(dirpath=tmp_path / "s"), WeightRecorder()
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.1, cycle_length=1), weights, *extra], max_epochs=4)
    with pytest.raises(OSError) as err:
        trainer.fit(TinyModule(), make_loader())
    monkeypatch.undo()
    message = str(err.value)
    assert message.startswith(f"SnapshotEnsemble could not write the snapshot '{tmp_path / 's' / 'cycle001-step00000015.pt'}' "
                              f"after optimizer step 15: {text}.") and "\n" not in message
    left = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert left == ["cycle000-step00000007.pt"] + (["cycle001-step00000015.pt"] if how == "folder" else [])
    sd = load_snapshot(tmp_path / "s" / "cycle000-step00000007.pt")["state_dict"]
    assert all(torch.equal(sd[k], v) for k, v in weights.after[8].items())


def test_a_folder_in_the_way_of_a_snapshot_name_is_refused_at_fit_start(tmp_path):
    (tmp_path / "s" / "cycle001-step00000015.pt").mkdir(parents=True)
    weights = WeightRecorder()
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(dirpath=tmp_path / "s"), SGDR(max_lr=0.1, cycle_length=1), weights],
                           max_epochs=3)
    with pytest.raises(ValueError, match=re.escape(f"dirpath='{tmp_path / 's'}' is not allowed: 'cycle001-step00000015.pt' in "
                                                   f"the folder '{tmp_path / 's'}' is not a plain file")) as err:
        trainer.fit(TinyModule(), make_loader())
    assert "\n" not in str(err.value) and weights.after == {}


@pytest.mark.parametrize("free_snapshots, refused", [(0.5, True), (2.5, False)])
def test_free_space_is_probed_before_the_first_step(tmp_path, monkeypatch, free_snapshots, refused):
    """keep=3 over 5 cycle ends holds up to 4 snapshots at once (the new one is written before the oldest goes):
    less free space than one snapshot is refused before any step; less than four is warned about."""
    size = sum(t.numel() * t.element_size() for t in TinyModule().state_dict().values()) + 64 * 1024
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=int(free_snapshots * size)))
    weights = WeightRecorder()
    trainer = make_trainer(tmp_path, [SnapshotEnsemble(keep=3, dirpath=tmp_path / "s"), SGDR(max_lr=0.1, cycle_length=1),
                                      weights], max_epochs=5)
    if refused:
        with pytest.raises(OSError, match=r"cannot hold one snapshot: the disk is full \(0\.0 MiB free") as err:
            trainer.fit(TinyModule(), make_loader())
        assert "\n" not in str(err.value) and weights.after == {}
    else:
        with pytest.warns(UserWarning, match=r"less than the 4 snapshot\(s\) this fit will hold at once"):
            trainer.fit(TinyModule(), make_loader())
        assert trainer.global_step == 40
