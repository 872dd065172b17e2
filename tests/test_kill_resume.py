"""Reliability: kill -9 a training process again and again, resume each time from its last checkpoint.

A child process trains SGDR + SnapshotEnsemble(keep=3) with a ModelCheckpoint every 7 optimizer
steps and prints the LR of every step. The test kills it with SIGKILL at least 20 times: at a
random step, or (every third kill) while a snapshot is half written (the child's ``torch.save``
writes half the bytes, says so, and sleeps). After each kill it checks the snapshot folder:
every snapshot file loads, the only other files are at most one unfinished temporary write of
our own name pattern (the previous ones were removed at the next start), and every member the
checkpoint lists is on disk or was evicted by a newer snapshot. At the end: the LR of every step
(bit for bit, also of the steps run twice), the kept snapshots and their metadata equal an
uninterrupted run's, and no file outside the run folder changed. The training processes are
forked from one process that imported torch and Lightning once (a fresh interpreter per attempt
would spend most of the test importing).

Run: ``pytest tests/test_kill_resume.py -m slow -s`` (prints the counts for the reliability table).
"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lr_plugins.snapshot import list_snapshots, load_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

KILLS = 20
EPOCHS = 20
STEPS = 20 * EPOCHS  # SGDR cycles of one epoch (20 steps) end at steps 19, 39, ..., 399
KEEP = 3
TMP = re.compile(r"^\.cycle\d{3}-step\d{8}\.pt\.[a-z0-9_]{8}\.tmp$")

ZYGOTE = r"""
import io, os, sys, time, traceback
from pathlib import Path

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lr_plugins import SGDR, SnapshotEnsemble


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class Report(L.Callback):
    def on_train_start(self, trainer, pl_module):
        print("TRAINING", trainer.global_step, flush=True)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        print("LR", trainer.global_step, optimizer.param_groups[0]["lr"].hex(), flush=True)


def slow_snapshot_writes(seconds):
    # a snapshot write that stops half way, so that a kill can land inside it
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("format") == "lr_plugins.snapshot/1":
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            print("WRITING", obj["meta"]["step"], flush=True)
            time.sleep(seconds)
            f.write(data[len(data) // 2 :])
            return None
        return real_save(obj, f, *args, **kwargs)

    torch.save = save


def train(run, slow):
    torch.set_num_threads(1)
    if slow > 0:
        slow_snapshot_writes(slow)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 4, generator=g)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)  # 20 steps per epoch
    L.seed_everything(0, verbose=False)
    last = run / "ckpt" / "last.ckpt"
    trainer = L.Trainer(
        default_root_dir=run, max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[
            SGDR(max_lr=0.02, cycle_length=1),
            SnapshotEnsemble(keep=KEEP, verbose=False),
            Report(),
            ModelCheckpoint(dirpath=run / "ckpt", save_last=True, save_top_k=0, every_n_train_steps=7),
        ],
    )
    trainer.fit(Net(), data, ckpt_path=str(last) if last.exists() else None)
    print("DONE", trainer.global_step, flush=True)


# The zygote: imports once, then forks one training process per command "<run> <slow> <fifo>";
# the process writes its lines into the fifo. The zygote reports "PID <pid>" and "EXIT <pid> <code>".
print("READY", flush=True)
for command in sys.stdin:
    run, slow, fifo = command.split()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sys.stdout = open(fifo, "w", buffering=1)
            train(Path(run), float(slow))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    print("PID", pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("EXIT", pid, os.waitstatus_to_exitcode(status), flush=True)
"""


def _lines(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line.strip())
    q.put(None)


def _get(q: queue.Queue, deadline: float, what: str):
    try:
        return q.get(timeout=max(deadline - time.monotonic(), 0.01))
    except queue.Empty:
        pytest.fail(f"hang: no output from the {what} before the deadline")


class Zygote:
    """A process that has imported torch and Lightning and forks one training process per run."""

    def __init__(self, script: Path, ctl: Path):
        self.ctl, self.n = ctl, 0
        env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(ctl / "zygote.err", "w"), text=True, env=env, cwd=ctl,  # noqa: SIM115 - held by the child for its life
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines, args=(self.proc.stdout, self.out), daemon=True).start()
        assert _get(self.out, time.monotonic() + 300, "zygote") == "READY"

    def start(self, run: Path, slow: float = 0.0) -> Child:
        self.n += 1
        fifo = self.ctl / f"out{self.n}"
        os.mkfifo(fifo)
        child = Child(self, fifo)
        self.proc.stdin.write(f"{run} {slow} {fifo}\n")
        self.proc.stdin.flush()
        kind, pid = _get(self.out, time.monotonic() + 60, "zygote").split()
        assert kind == "PID"
        child.pid = int(pid)
        return child

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Child:
    """One training process (forked by the zygote); its lines arrive in a queue."""

    def __init__(self, zygote: Zygote, fifo: Path):
        self.zygote, self.pid, self.returncode = zygote, None, None
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=lambda: _lines(open(fifo), self.lines), daemon=True).start()  # noqa: SIM115 - read until the writer closes

    def next_line(self, deadline: float) -> str | None:
        """The next line; ``None`` at the end of the output. Fails the test past ``deadline`` (a hang)."""
        line = _get(self.lines, deadline, "training process")
        return line

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        kind, pid, code = _get(self.zygote.out, time.monotonic() + 120, "zygote").split()
        assert (kind, int(pid)) == ("EXIT", self.pid)
        self.returncode = int(code)
        return self.returncode


def tree(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if any(p == d or d in p.parents for d in skip):
            continue
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def record_lr(lrs: dict[int, str], line: str) -> int:
    _, step, lr = line.split()
    step = int(step)
    assert lrs.setdefault(step, lr) == lr, f"step {step}: LR {lr} after a resume, {lrs[step]} before"
    return step


def check_folder(run: Path) -> int:
    """The snapshot folder after a kill; returns the number of unfinished writes found."""
    folder = run / "snapshots"
    names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    snaps = [p.name for p in list_snapshots(folder)]
    for name in snaps:
        load_snapshot(folder / name)  # no snapshot is ever half written
    leftovers = [n for n in names if n not in snaps]
    assert all(TMP.match(n) for n in leftovers), leftovers
    assert len(leftovers) <= 1, f"unfinished writes of earlier kills were not removed: {leftovers}"
    last = run / "ckpt" / "last.ckpt"
    if last.exists():
        state = torch.load(last, weights_only=False)
        (records,) = [v["records"] for k, v in state["callbacks"].items() if k.startswith("SnapshotEnsemble")]
        newest = max((int(n[-11:-3]) for n in snaps), default=-1)
        for r in records:  # on disk, or evicted (keep) by a snapshot written after the checkpoint
            assert r["file"] in snaps or newest > r["step"], (r, snaps)
    return len(leftovers)


def test_kill_9_and_resume_keeps_snapshots_consistent_and_the_lr_exact(tmp_path):
    ref, run, outside, ctl = tmp_path / "ref", tmp_path / "run", tmp_path / "outside", tmp_path / "ctl"
    for d in (ref, run, outside, ctl):
        d.mkdir()
    script = ctl / "zygote.py"
    script.write_text(f"EPOCHS = {EPOCHS}\nKEEP = {KEEP}\n" + ZYGOTE)
    # files outside the run folder that look like ours: none may change
    (outside / "cycle000-step00000019.pt").write_bytes(b"not a snapshot")
    (outside / ".cycle000-step00000019.pt.abcdefgh.tmp").write_bytes(b"not ours")
    zygote = Zygote(script, ctl)

    # the uninterrupted reference
    child, ref_lrs = zygote.start(ref), {}
    deadline = time.monotonic() + 300
    while (line := child.next_line(deadline)) is not None:
        if line.startswith("LR"):
            record_lr(ref_lrs, line)
    assert child.wait() == 0 and sorted(ref_lrs) == list(range(STEPS))
    before = tree(tmp_path, skip=(run, ctl))

    rng = random.Random(12)
    lrs: dict[int, str] = {}
    counts = {"kills at a random step": 0, "kills during a snapshot write": 0, "unfinished writes found": 0,
              "resumes": 0}
    finished = False
    while not finished:
        killing = counts["kills at a random step"] + counts["kills during a snapshot write"] < KILLS
        during_write = killing and rng.random() < 1 / 3
        child = zygote.start(run, slow=0.5 if during_write else 0.0)
        target, deadline = None, time.monotonic() + 120
        while (line := child.next_line(deadline)) is not None:
            if line.startswith("TRAINING"):
                start = int(line.split()[1])
                counts["resumes"] += start > 0
                target = start + rng.randint(1, 20)
            elif line.startswith("LR"):
                step = record_lr(lrs, line)
                if killing and not during_write and target is not None and step >= target:
                    child.kill()
                    counts["kills at a random step"] += 1
                    break
            elif line.startswith("WRITING") and killing and during_write:
                time.sleep(rng.uniform(0, 0.3))
                child.kill()
                counts["kills during a snapshot write"] += 1
                break
            elif line.startswith("DONE"):
                finished = True
        code = child.wait()
        if finished:
            assert code == 0
        else:
            assert code == -signal.SIGKILL, f"the training process ended with {code}"
            counts["unfinished writes found"] += check_folder(run)
    zygote.close()

    print("\nkill -9 reliability:", counts)
    assert counts["kills at a random step"] + counts["kills during a snapshot write"] >= KILLS
    assert counts["kills during a snapshot write"] >= 3 and counts["unfinished writes found"] >= 1
    # the LR of every step, bit for bit, equals the uninterrupted run's
    assert lrs == ref_lrs
    # the kept snapshots: the same files and metadata (step, epoch, LR) as the uninterrupted run's. The
    # weights differ: Lightning restarts a non-resumable DataLoader at the start of its epoch when it
    # resumes from a mid-epoch checkpoint (it warns so), so the resumed run sees other batches.
    last = EPOCHS - 1
    expected = [f"cycle{c:03d}-step{20 * c + 19:08d}.pt" for c in range(last - KEEP + 1, last + 1)]
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == expected
    assert [p.name for p in list_snapshots(ref / "snapshots")] == expected
    state = torch.load(run / "ckpt" / "last.ckpt", weights_only=False)
    (records,) = [v["records"] for k, v in state["callbacks"].items() if k.startswith("SnapshotEnsemble")]
    in_ckpt = [f"cycle{c:03d}-step{20 * c + 19:08d}.pt" for c in range(EPOCHS) if 20 * c + 19 < state["global_step"]]
    assert [r["file"] for r in records] == in_ckpt[-KEEP:]  # the members at the checkpoint's step
    (run_id,) = [v["run"] for k, v in state["callbacks"].items() if k.startswith("SnapshotEnsemble")]
    for name in expected:
        a, b = load_snapshot(ref / "snapshots" / name), load_snapshot(run / "snapshots" / name)
        assert b["meta"].pop("run") == run_id != a["meta"].pop("run")  # one run across every kill and resume
        assert a["meta"] == b["meta"] and a["meta"]["lr"].hex() == ref_lrs[a["meta"]["step"]]
        assert a["state_dict"].keys() == b["state_dict"].keys()
        assert all(torch.isfinite(v).all() for v in b["state_dict"].values())
    # nothing outside the run folder changed (ctl/: the test's own script, fifos and log)
    assert tree(tmp_path, skip=(run, ctl)) == before
