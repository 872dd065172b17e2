"""Refuse a sweep that cannot launch, with one line, before any job or folder is made.

:class:`LauncherCheck` (a Hydra callback in ``conf/lr_train.yaml``) runs when a multirun starts:
``hydra/launcher=slurm`` (submitit's ``SlurmLauncher``) needs SLURM's ``srun`` on this machine;
without it submitit raised ``RuntimeError: Could not detect "srun"`` with a traceback, after
Hydra had made the sweep folder.

Example:
    >>> from omegaconf import OmegaConf
    >>> launcher_problem(OmegaConf.create({"hydra": {"launcher": {"_target_": "x.BasicLauncher"}}})) is None
    True
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from hydra.experimental.callback import Callback

__all__ = ["LauncherCheck", "launcher_problem"]


def launcher_problem(config: Any) -> str | None:
    """Why the configured launcher cannot start jobs here (one line), or ``None``."""
    from omegaconf import OmegaConf

    target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    if target.endswith("SlurmLauncher") and shutil.which("srun") is None:
        return ("hydra/launcher=slurm is not allowed here: this machine has no SLURM (no `srun` on PATH); run the "
                "sweep on a SLURM login node, or locally with hydra/launcher=submitit_local (or basic, parallel)")
    return None


class LauncherCheck(Callback):
    """Hydra callback: :func:`launcher_problem` when a multirun starts; exit status 2 if there is one."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        problem = launcher_problem(config)
        if problem:
            print(f"lr-train: invalid sweep, nothing was launched: {problem}", file=sys.stderr)
            raise SystemExit(2)
