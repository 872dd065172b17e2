"""The evidence benchmarks: their helpers against known answers, and micro runs of each script."""

from __future__ import annotations

import csv
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import (
    _common,
    _rules,
    ddp_scaling,
    lr_finder,
    lr_finder_rule_search,
    lr_finder_sweep,
    mnist1d_anchor,
    snapshot_ensemble,
    time_to_target,
)
from lr_plugins.finder import smooth

ROOT = Path(__file__).resolve().parents[2]


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------- helpers
def test_spread_matches_numpy_and_statistics():
    rng = np.random.default_rng(0)
    values = list(rng.normal(size=11))
    s = _common.spread(values + [float("nan"), None])
    assert s["n"] == 11
    assert s["median"] == pytest.approx(statistics.median(values))
    assert s["q1"] == pytest.approx(statistics.quantiles(values, n=4, method="inclusive")[0])
    assert s["q3"] == pytest.approx(statistics.quantiles(values, n=4, method="inclusive")[2])
    assert (s["min"], s["max"]) == (min(values), max(values))
    assert math.isnan(_common.spread([])["median"])
    assert _common.fmt_spread([]) == "–"
    assert _common.fmt_spread([4, 5, 6, 8], digits=2) == "5.50 [4.75–6.50] (4.00–8.00)"


def test_epochs_to_target_is_the_first_epoch_at_or_above():
    assert time_to_target.epochs_to_target([0.5, 0.95, 0.2, 0.99], 0.95) == 2
    assert time_to_target.epochs_to_target([0.5, 0.949, 0.99], 0.95) == 3
    assert time_to_target.epochs_to_target([0.5, 0.9], 0.95) is None


def test_paired_counts_wins_ties_losses_against_step():
    rows = [
        {"schedule": "Step", "seed": 0, "epochs_to_95": 4},
        {"schedule": "Step", "seed": 1, "epochs_to_95": ""},
        {"schedule": "Step", "seed": 2, "epochs_to_95": 5},
        {"schedule": "SGDR", "seed": 0, "epochs_to_95": 3},  # earlier
        {"schedule": "SGDR", "seed": 1, "epochs_to_95": 9},  # earlier: Step never got there
        {"schedule": "SGDR", "seed": 2, "epochs_to_95": 5},  # same
        {"schedule": "Constant", "seed": 0, "epochs_to_95": ""},  # later
        {"schedule": "Constant", "seed": 1, "epochs_to_95": ""},  # same (neither)
        {"schedule": "Constant", "seed": 2, "epochs_to_95": 7},  # later
    ]
    assert time_to_target.paired(rows, [0.95])[2] == "- 95%: SGDR 2/1/0, Constant 0/1/2"


def test_schedules_match_the_papers_scaled_to_the_budget():
    # SGDR paper: T_0=10, T_mult=2 -> restarts after 10, 30, 70 of 150 epochs; scaled to 30: 2, 6, 14 of 30.
    sgdr = time_to_target.make_schedule("SGDR", 30)
    assert [e + 1 for e in sgdr.cycle_ends(30)] == [2, 6, 14, 30]
    # Eq. 5: eta = (1 + cos(pi T_cur / T_i)) / 2; epoch 5 is T_cur=3 of the second cycle (T_i=4).
    assert [sgdr.lr_at(e) for e in (1, 2, 5)] == pytest.approx([0.5, 1.0, (1 + math.cos(math.pi * 3 / 4)) / 2])
    # Classic step schedule: x0.1 at 50% and 75% of training.
    step = time_to_target.make_schedule("Step", 40)
    assert [step.lr_at(e) for e in (0, 19, 20, 29, 30, 39)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    const = time_to_target.make_schedule("Constant", 30)
    assert const.preview(30).tolist() == [1.0] * 30
    with pytest.raises(ValueError, match="name='Cyclic'"):
        time_to_target.make_schedule("Cyclic", 30)


def test_atomic_writers_round_trip(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"a": 2, "c": 0.5}]
    path = _common.write_csv(tmp_path / "sub" / "rows.csv", rows)
    assert _read(path) == [{"a": "1", "b": "x", "c": ""}, {"a": "2", "b": "", "c": "0.5"}]
    assert [p.name for p in path.parent.iterdir()] == ["rows.csv"]  # no temporary file left behind


def test_compare_curves_flags_a_rank_that_differs():
    lrs = list(ddp_scaling._schedule().preview(6, steps_per_epoch=2) * 0.1)
    rows = [
        {"config": "1 process, 1 thread", "processes": 1, "traces": [{"rank": 0, "lrs": lrs}]},
        {"config": "ddp_spawn, 2 processes", "processes": 2,
         "traces": [{"rank": 0, "lrs": lrs}, {"rank": 1, "lrs": lrs[:3] + [lrs[3] + 1e-3] + lrs[4:]}]},
    ]
    checks = ddp_scaling.compare_curves(rows, epochs=3)
    assert [c["identical_to_1_process"] for c in checks] == [True, True, False]
    assert checks[2]["max_abs_diff_vs_1_process"] == pytest.approx(1e-3)
    assert checks[0]["max_abs_diff_vs_closed_form"] == 0.0


def test_anchor_reads_test_acc_from_tensorboard(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path, name="run")
    logger.log_metrics({"test/acc": 0.25}, step=1)
    logger.log_metrics({"test/acc": 0.9375}, step=2)
    logger.finalize("success")
    assert mnist1d_anchor.read_scalar(tmp_path, "test/acc") == pytest.approx(0.9375)
    assert mnist1d_anchor.read_scalar(tmp_path, "val/acc") is None
    assert mnist1d_anchor._from_stdout("│ test/acc │ 0.9810 │\n", "test/acc") == pytest.approx(0.981)


def test_anchor_table_puts_measured_rows_next_to_the_paper():
    config = next(iter(mnist1d_anchor.CONFIGS))
    rows = [{"config": config, "seed": s, "command": f"lr-train seed={s}", "test_acc": a, "wall_seconds": 20.0,
             "app_seconds": 12.0, "threads": 1}
            for s, a in enumerate([0.93, 0.95, 0.97])]
    table = mnist1d_anchor.summarize(rows).splitlines()
    cnn = next(i for i, line in enumerate(table) if line.startswith("| CNN | 94 |"))
    assert "95.00 ± 2.00** (93.0–97.0)" in table[cnn + 1]
    assert any("2/3 seeds at or above the paper's CNN (94%)" in line for line in table)


# ---------------------------------------------------------------------- micro runs
def test_time_to_target_micro_run(tmp_path):
    rows = time_to_target.main(["--seeds", "1", "--epochs", "2", "--channels", "4", "--blocks", "1",
                                "--schedules", "Constant", "SGDR", "--targets", "0.2", "1.0", "--out", str(tmp_path), "--no-docs"])
    assert {p.name for p in tmp_path.iterdir()} >= {"runs.csv", "curves.csv", "summary.md", "time_to_target.png"}
    runs, curves = _read(tmp_path / "runs.csv"), _read(tmp_path / "curves.csv")
    assert [r["schedule"] for r in runs] == ["Constant", "SGDR"] and len(rows) == 2
    for r in runs:
        accs = [float(c["val_acc"]) for c in curves if c["schedule"] == r["schedule"]]
        assert len(accs) == 2
        expect = time_to_target.epochs_to_target(accs, 0.2)
        assert r["epochs_to_20"] == ("" if expect is None else str(expect))
        assert r["epochs_to_100"] == ""  # 100% validation accuracy after 2 epochs of a 4-channel CNN: no
        assert 0.0 <= float(r["test_acc"]) <= 1.0
    # Constant keeps the optimizer's LR of 0.1 at the start of every epoch.
    assert [float(c["lr_epoch_start"]) for c in curves if c["schedule"] == "Constant"] == pytest.approx([0.1, 0.1])
    assert "reached 20%" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
def test_ddp_scaling_micro_run(tmp_path):
    rows = ddp_scaling.main(["--epochs", "1", "--repeats", "1", "--out", str(tmp_path), "--no-docs"])
    checks = _read(tmp_path / "lr_checks.csv")
    assert [(c["config"], c["rank"]) for c in checks][-2:] == [("ddp_spawn, 2 processes", "0"), ("ddp_spawn, 2 processes", "1")]
    assert all(c["identical_to_1_process"] == "True" for c in checks)
    assert {r["steps"] for r in rows} == {57}  # 3600 / 64 = 3600 / 2 / 32 -> 57 steps per epoch either way


@pytest.mark.slow
def test_mnist1d_anchor_micro_run(tmp_path):
    rows = mnist1d_anchor.main(["--seeds", "1", "--no-mlp", "--override", "trainer.max_epochs=2",
                                "--out", str(tmp_path), "--no-docs"])
    assert len(rows) == 1 and 0.1 < rows[0]["test_acc"] <= 1.0 and rows[0]["read_from"] == "tensorboard"
    assert "trainer.max_epochs=2" in rows[0]["command"]
    assert "| CNN | 94 |" in (tmp_path / "summary.md").read_text()


def test_rule_search_scores_against_the_interpolated_grid():
    """Gap: mean over seeds of the grid interpolated in log10(lr) at each pick, minus the grid's best."""
    x = np.array([-2.0, -1.0, 0.0])
    acc = np.array([80.0, 90.0, 60.0])
    gap, spread = lr_finder_rule_search.score([0.1, 10**-1.5], x, acc)
    assert gap == pytest.approx((90.0 + 85.0) / 2 - 90.0)
    assert spread == pytest.approx(0.5)


def test_rule_search_candidates_reproduce_the_rules_they_generalise():
    """The family holds steepest, minimum and peak themselves, each evaluated on the curve's features (read
    from a finder result's public fields: ``lrs``, ``smoothed``, ``suggestions``)."""
    lrs = np.geomspace(1e-6, 10.0, 100)
    x = np.log10(lrs)
    losses = 2.0 - np.tanh((x + 3.0) / 0.5) + np.where(x > -1.0, 30.0 * (x + 1.0) ** 2, 0.0)
    smoothed = smooth(losses, 2.0)
    f = lr_finder_rule_search.features(SimpleNamespace(lrs=lrs, smoothed=smoothed, suggestions={"steepest": 1e-3}))
    rules = lr_finder_rule_search.candidate_rules()
    # peak + 10 x 5 steepest/minimum blends + 5 levels x (9 scales x (1 + 3 blends + 2 right levels) + 5 right-only)
    assert len(rules) == 1 + 10 * 5 + 5 * (9 * (1 + 3 + 2) + 5) == 346
    lr_min = lrs[int(np.argmin(smoothed))]
    assert rules["1.0 * steepest^1.0 * minimum^0.0"](f) == pytest.approx(1e-3)
    assert rules["peak"](f) == pytest.approx(3e-3)  # the minimum is 2 decades right: 3 x steepest
    assert rules["1.0 * steepest^0.0 * minimum^1.0"](f) == pytest.approx(lr_min)
    assert rules["0.5 * steepest^0.5 * minimum^0.5"](f) == pytest.approx(0.5 * np.sqrt(1e-3 * lr_min))
    assert f["L0.5"] < f["L0.1"] <= f["minimum"] <= f["R0.1"] <= f["R0.5"]


def test_rule_search_multiplier_range_and_oracle_on_a_known_grid():
    """A peak one half-decade wide at 0.1: the multipliers that meet it, and the oracle finds the right one."""
    x = np.array([-2.0, -1.5, -1.0, -0.5, 0.0])
    acc = np.array([80.0, 88.0, 90.0, 88.0, 60.0])  # within 1 point (>= 89): log10(lr) in [-1.25, -0.75]
    lo, hi = lr_finder_rule_search.met_range([0.02, 0.02], x, acc)  # c * 0.02 in [10^-1.25, 10^-0.75]
    assert lo * 0.02 == pytest.approx(10**-1.25, rel=0.06) and hi * 0.02 == pytest.approx(10**-0.75, rel=0.06)
    assert lr_finder_rule_search.met_range([0.01, 0.1], x, acc) is None  # one decade apart: spread > 0.3
    name, c, gap, spread = lr_finder_rule_search.oracle({"wide": [0.01, 0.1], "tight": [0.02, 0.02]}, x, acc)
    assert name == "tight" and c * 0.02 == pytest.approx(0.1, rel=0.03) and gap == pytest.approx(0.0, abs=0.1)
    assert spread == 0.0
    # Meeting the target comes first: on a flat top both shapes reach the best accuracy, but only "tight" keeps
    # its picks within 0.3 decades; "wide" (0.35 decades) comes first and would win on the gap alone.
    flat = np.array([80.0, 90.0, 90.0, 90.0, 60.0])
    name, c, gap, spread = lr_finder_rule_search.oracle({"wide": [0.1, 0.1 * 10**0.35], "tight": [0.1, 0.1]}, x, flat)
    assert (name, gap, spread) == ("tight", 0.0, 0.0)


def test_rule_search_trained_runs_resume_from_their_csv(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lr_finder_rule_search, "_train", lambda task, lr, seed, root: calls.append(lr) or 0.5 + lr)
    picks = {"digits_sgd": [0.1, 0.2, 0.3, 0.4, 0.5]}
    first = lr_finder_rule_search._trained(tmp_path / "runs.csv", picks)
    again = lr_finder_rule_search._trained(tmp_path / "runs.csv", picks)
    assert first == again == {"digits_sgd": pytest.approx([60.0, 70.0, 80.0, 90.0, 100.0])} and len(calls) == 5


def test_sweep_keeps_the_best_validation_run_and_reports_its_test_accuracy():
    assert lr_finder_sweep.choose([0.90, 0.95, 0.95], [0.3, 0.2, 0.25], [0.91, 0.93, 0.99]) == (1, 0.93)  # tie: loss
    assert lr_finder_sweep.choose([0.95, 0.95, 0.9], [0.3, 0.3, 0.1], [0.91, 0.93, 0.99]) == (0, 0.91)  # then the first
    assert lr_finder_sweep.choose([0.97, 0.90, 0.80], [0.9, 0.1, 0.1], [0.50, 0.99, 0.99]) == (0, 0.50)  # never test


def test_sweep_micro_run_on_digits(tmp_path):
    """Two seeds, one task, a given grid: three trainings per seed, the kept one has the best validation accuracy."""
    grid = tmp_path / "grid.csv"
    grid.write_text("task,lr,acc\ndigits_sgd,0.01,0.90\ndigits_sgd,0.1,0.97\n")
    rows = lr_finder_sweep.main(["--quick", "--tasks", "digits_sgd", "--grid", str(grid), "--out", str(tmp_path / "out")])
    from lr_plugins.app.data import DigitsDataModule

    dm = DigitsDataModule(batch_size=64, seed=0)
    dm.setup("fit")
    n_val, n_test = len(dm.val_dataloader().dataset), len(dm.test_dataloader().dataset)
    assert n_val * 3 < n_test  # splits of different sizes, so a swapped split shows
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        vals = [(r[f"val_x{s:g}"], -r[f"val_loss_x{s:g}"]) for s in lr_finder_sweep.SCALES]
        i = lr_finder_sweep.SCALES.index(r["chosen_scale"])
        assert vals[i] == max(vals) and r["test_acc"] == r[f"test_x{r['chosen_scale']:g}"]
        assert r["chosen_lr"] == pytest.approx(r["chosen_scale"] * r["basin"])
        for s in lr_finder_sweep.SCALES:  # each accuracy is a count over its own split
            assert r[f"val_x{s:g}"] * n_val == pytest.approx(round(r[f"val_x{s:g}"] * n_val), abs=1e-3)
            assert r[f"test_x{s:g}"] * n_test == pytest.approx(round(r[f"test_x{s:g}"] * n_test), abs=1e-3)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| digits_sgd | 0.1 | 97.0 |" in summary and "The sweep: within 1 point of the grid best on" in summary


def test_schedule_overhead_benchmark_runs(tmp_path):
    """A smoke run of the benchmark (no timing is asserted: timings belong to benchmarks/)."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.schedule_overhead", "--steps", "200", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("| none |", "| ours |", "| torch |", "| ours/torch |", "| ours/none |", "| torch/none |"):
        assert row in proc.stdout
    assert re.search(r"one lr_at call: [0-9.]+ µs; the callback's cost per optimizer step in Trainer.fit .*: -?[0-9.]+ µs",
                     proc.stdout)


@pytest.mark.slow
def test_snapshot_ensemble_quick_run(tmp_path):
    """The quick mode (M = 3 and 6, one seed, both models) through the public snapshot API."""
    rows = snapshot_ensemble.main(["--quick", "--out", str(tmp_path), "--no-docs"])
    assert [(r["model"], r["cycles"]) for r in rows] == [(m, c) for m in snapshot_ensemble.MODELS for c in (0, 3, 6)]
    for r in rows:
        assert 0.0 < r["single_acc"] <= 1.0
        if r["cycles"]:
            assert 0.0 < r["ensemble_acc"] <= 1.0 and 0.0 < r["last3_acc"] <= 1.0
    assert {p.name for p in tmp_path.iterdir()} >= {"runs.csv", "summary.md", "snapshot_ensemble.png"}


@pytest.mark.slow
def test_lr_finder_quick_run_on_one_task(tmp_path):
    """The 18-task benchmark's quick mode on one task: every rule of the lab's list is picked and trained, and the
    product's picks are read from the finder result's public fields."""
    lr_finder.main(["--quick", "--tasks", "digits_sgd", "--out", str(tmp_path)])
    runs = _read(tmp_path / "runs.csv")
    assert [r["seed"] for r in runs] == ["0", "1"]
    for r in runs:
        for rule in _rules.RULES:
            assert float(r[f"{rule}_lr"]) > 0 and 0.0 <= float(r[f"{rule}_acc"]) <= 1.0
        assert float(r["ours_lr"]) == float(r["steepest_lr"])  # find_lr with no schedule: the default pick is steepest
    assert "| peak |" in (tmp_path / "summary.md").read_text()

