"""Issue 17 item 4: ``hparams_search=optuna`` survives a failed trial (it is recorded as failed, the rest run,
the summary is written); a metric no job returns, or a reversed interval, is refused before the first trial."""

from __future__ import annotations

import csv

import pytest
import yaml
from lifecycle_run import DIGITS, lr_train

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
SEARCH = ["-m", *DIGITS, "trainer.max_epochs=1", "trainer.limit_train_batches=3", "hparams_search=optuna"]


def _rows(sweep):
    return list(csv.DictReader((sweep / "summary.csv").open()))


def test_a_refused_trial_is_a_failed_trial_and_the_search_goes_on(tmp_path):
    proc = lr_train([*SEARCH, "hydra.sweeper.n_trials=4", 'hydra.sweeper.params={schedule.max_lr: "choice(0.05,-1.0,0.1)"}',
                     "hydra.sweep.dir=sweep"], tmp_path)
    assert "Values cannot be specified" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = _rows(tmp_path / "sweep")
    assert len(rows) == 4  # every trial ran
    statuses = {r["status"] for r in rows}
    assert statuses == {"ok", "failed"}, rows  # the sampler (seed 0) draws both kinds in 4 trials
    assert all("max_lr=-1.0" in r["error"] for r in rows if r["status"] == "failed")
    assert proc.returncode == 1  # some trial failed
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_params"]["schedule.max_lr"] in (0.05, 0.1)  # failed trials are not the best


@pytest.mark.parametrize("overrides, expected", [
    (["optimized_metric=train/acc"], "optimized_metric='train/acc' is not allowed"),
    (["schedule.max_lr=tag(log, interval(0.5, 0.01))"], "start 0.5 is above its end 0.01"),
    pytest.param(['hydra.sweeper.params={schedule.max_lr: "interval(0.5, 0.01)"}'], "hydra.sweeper.params.schedule.max_lr=",
                 marks=pytest.mark.slow),
])
def test_a_bad_search_is_refused_before_the_first_trial(tmp_path, overrides, expected):
    proc = lr_train([*SEARCH, *overrides, "hydra.sweep.dir=sweep"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("lr-train:")]
    assert expected in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "sweep").exists()  # no trial ran


@pytest.mark.slow  # ~20 s: one training job
def test_a_metric_the_model_does_not_log_stops_the_search_at_the_first_job(tmp_path):
    proc = lr_train([*SEARCH, "optimized_metric=val/accuracy", "hydra.sweep.dir=sweep"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "optimized_metric='val/accuracy'" in proc.stderr and "val/acc" in proc.stderr
    (row,) = _rows(tmp_path / "sweep")  # one job, then the sweep stopped, with its summary
    assert row["status"] == "failed" and "logged no such metric" in row["error"]
