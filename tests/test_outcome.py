"""Issue 17 item 6 (app side): result.json says when a run ended before its schedule did."""

from __future__ import annotations

from types import SimpleNamespace

from lifecycle_run import DIGITS, lr_train, result

from lr_plugins import WarmupCosine
from lr_plugins.app.outcome import schedule_report


def test_result_json_reports_a_run_stopped_before_its_schedule_ended(tmp_path):
    proc = lr_train([*DIGITS, "trainer.max_epochs=3", "hydra.run.dir=run",
                     "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.stop.monitor=val/acc",
                     "+callbacks.stop.mode=max", "+callbacks.stop.stopping_threshold=0.0"], tmp_path)  # stops after epoch 0
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = result(tmp_path / "run")["schedule"]
    assert report == {"name": "WarmupCosine", "planned_steps": 15.0, "steps": 5, "ended_early": True}


def test_the_schedule_callbacks_own_report_comes_first():
    cb = WarmupCosine()
    cb._total_steps = 10.0
    trainer = SimpleNamespace(global_step=10)
    assert schedule_report([cb], trainer)["ended_early"] is False  # by the counts
    cb._ended_early = True  # what the callback itself reported at train end wins (e.g. a re-planned schedule)
    assert schedule_report([cb], trainer)["ended_early"] is True
    assert schedule_report([], trainer) is None
