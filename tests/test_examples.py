"""The examples run as written, as a user would start them (a subprocess)."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_plain_lightning_example_trains_and_logs_the_lr(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "plain_lightning.py"), "--epochs", "3", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 3 epochs x 24 batches; SGDR(cycle_length=1, cycle_mult=2, warmup=0.5): cycles end after 1.5 epochs.
    assert "72 optimizer steps" in proc.stdout
    assert "cycle ends at steps: [35]" in proc.stdout
    acc = float(re.search(r"test accuracy ([0-9.]+)", proc.stdout).group(1))
    assert acc > 0.7  # 10 classes: chance is 0.1

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc_ = EventAccumulator(str(out / "sgdr" / "version_0"), size_guidance={"scalars": 0})  # fit + test files
    acc_.Reload()
    lrs = acc_.Scalars("lr-SGD")
    assert [e.step for e in lrs] == list(range(72))
    assert max(e.value for e in lrs) <= 0.1 + 1e-7 and lrs[0].value == 0.0
    momentum = acc_.Scalars("lr-SGD-momentum")  # LearningRateMonitor's tag; SGDR leaves momentum alone
    assert [e.step for e in momentum] == list(range(72)) and {round(e.value, 6) for e in momentum} == {0.9}


def test_the_examples_default_log_folder_is_git_ignored(tmp_path):
    """Issue 19.4: `python examples/plain_lightning.py` from a checkout used to leave an untracked
    runs/; git itself says whether a file the example writes there is ignored."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    default = runpy.run_path(str(ROOT / "examples" / "plain_lightning.py"))["DEFAULT_OUT"]
    written = f"{default}/sgdr/version_0/events.out.tfevents.1.host"  # what TensorBoardLogger writes
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", written], cwd=ROOT)
    assert proc.returncode == 0, f"{written} is not git-ignored"
