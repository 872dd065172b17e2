"""lr_plugins.app.progress: the per-epoch line of lr-train runs without a terminal (issue 19.4).

Its ``lr`` is the LR the epoch's last optimizer step used: the value LearningRateMonitor logs for
that step (read back from a real CSVLogger file) and SGDR's closed form, not the next step's LR
that the schedule may already have written into the optimizer (at an SGDR restart, the peak).
"""

from __future__ import annotations

import csv
import math
import re

from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger

from lr_plugins import SGDR
from lr_plugins.app.progress import EpochLines
from tests.conftest import TinyModule, make_loader, make_trainer

SPE = 8  # 64 samples, batch 8


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("epoch ")]


def _sgdr(step: int, peak: float = 0.1, cycle: int = SPE) -> float:
    """SGDR (Loshchilov & Hutter 2017, eq. 5) with T_0 = one epoch, eta_min = 0, per step."""
    return peak * (1 + math.cos(math.pi * (step % cycle) / cycle)) / 2


def test_epoch_line_shows_the_lr_of_the_last_step(tmp_path, capsys):
    """Each cycle ends with the epoch: after the last step SGDR writes the restart's peak 0.1 into
    the optimizer, but the last step used ~0.0038. The line shows that, as the monitor logged it."""
    logger = CSVLogger(tmp_path, name="csv")
    monitor = LearningRateMonitor(logging_interval="step")
    trainer = make_trainer(tmp_path, [SGDR(max_lr=0.1, cycle_length=1, unit="epoch", log_lr=False), monitor, EpochLines()],
                           max_epochs=2, logger=logger, log_every_n_steps=1)
    trainer.fit(TinyModule(), make_loader())
    lines = _lines(capsys.readouterr().out)
    assert [ln.split()[1] for ln in lines] == ["1/2", "2/2"]
    with open(logger.log_dir + "/metrics.csv") as f:
        logged = {int(r["step"]): float(r["lr-SGD"]) for r in csv.DictReader(f) if r.get("lr-SGD")}
    for epoch, line in enumerate(lines, start=1):
        last_step = epoch * SPE - 1
        shown = float(re.search(r"  lr (\S+)  ", line).group(1))
        assert f"{shown:.4g}" == f"{logged[last_step]:.4g}", line
        assert math.isclose(shown, _sgdr(last_step), rel_tol=1e-3), line
        assert shown < 0.01  # not the restart's 0.1
        assert "lr-SGD" not in line  # one LR on the line, not a stale sample beside it

