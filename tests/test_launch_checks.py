"""Issue 17 item 11: ``-m hydra/launcher=slurm`` on a machine without SLURM is one line, exit 2, no folder."""

from __future__ import annotations

import shutil

import pytest
from lifecycle_run import DIGITS, lr_train

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has SLURM")
def test_slurm_launcher_without_slurm_is_one_line_before_any_job(tmp_path):
    proc = lr_train(["-m", *DIGITS, "hydra/launcher=slurm", "hydra.sweep.dir=sweep"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("lr-train:")]
    assert "hydra/launcher=slurm" in line and "srun" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "sweep").exists()
