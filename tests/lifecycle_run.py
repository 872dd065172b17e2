"""Run a real ``lr-train`` subprocess with the lifecycle test callbacks importable (tests/ on PYTHONPATH)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DIGITS = ["data=digits", "model=mlp", "trainer.enable_progress_bar=false", "~logger", "trainer.limit_train_batches=5",
          "trainer.limit_val_batches=1", "test=false"]


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore", PYTHONPATH=path)


def lr_train(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lr_plugins.app.train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def result(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())
