"""The pre-registered schedule test (benchmarks/lr_finder_schedule.py): its protocols against closed forms, its
gaps and verdicts on a hand-made cache, resuming from the cache, and a micro run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import _common
from benchmarks import lr_finder_schedule as lfs

GRID = (0.01, 0.1, 1.0)
SEEDS = (0, 1)


def test_the_preregistered_design_is_what_the_code_runs():
    assert len(lfs.FRESH_TASKS) >= 4 and len(lfs.SEEDS) >= 3
    assert np.diff(np.log10(lfs.GRID)) == pytest.approx([0.5] * (len(lfs.GRID) - 1))  # half-decade
    assert (lfs.GRID[0], lfs.GRID[-1]) == pytest.approx((1e-4, 10.0))
    for task in lfs.FRESH_TASKS:
        assert f"`{task}`" in lfs.PREREGISTRATION
    from benchmarks.lr_finder import TASKS

    assert not set(lfs.FRESH_TASKS) & set(TASKS)
    assert all(spec not in TASKS.values() for spec in lfs.FRESH_TASKS.values())
    assert lfs.AUTO == {"constant": "steepest", "annealed": "basin"}


def test_protocols_follow_their_closed_forms():
    """Constant: the pick on every step. Annealed: a linear warmup over half an epoch, then cosine to 0."""
    total, per_epoch, peak = 40, 10, 0.3
    assert lfs.schedule_for("constant", peak).preview(total, per_epoch).tolist() == [peak] * total
    annealed = lfs.schedule_for("annealed", peak).preview(total, per_epoch)
    warm = 5
    assert annealed[:warm] == pytest.approx([peak * t / warm for t in range(warm)])
    assert annealed[warm:] == pytest.approx([peak * (1 + math.cos(math.pi * (t - warm) / (total - warm))) / 2
                                            for t in range(warm, total)])
    with pytest.raises(ValueError, match="protocol='cyclic'"):
        lfs.schedule_for("cyclic", 0.1)


def _cache(folder, task: str, acc_of) -> None:
    """A hand-made task cache: picks per seed and an accuracy for every (protocol, lr, seed)."""
    picks = {"steepest": [0.01, 0.01], "basin": [0.1, 0.1], "valley": [0.01, 0.1], "peak": [1.0, 1.0],
             "tuner": [0.1, float("nan")]}
    _common.write_csv(folder / task / "picks.csv", [{"task": task, "seed": s, "rule": r, "lr": lrs[s]}
                                                    for r, lrs in picks.items() for s in SEEDS])
    lrs = sorted({*GRID, *(v for lrs in picks.values() for v in lrs if math.isfinite(v))})
    _common.write_csv(folder / task / "trainings.csv", [
        {"task": task, "protocol": p, "lr": lr, "seed": s, "acc": acc_of(p, lr, s)}
        for p in lfs.PROTOCOLS for lr in lrs for s in SEEDS])


def test_gaps_and_verdicts_on_a_known_cache(tmp_path):
    """Constant: best at 0.01 (0.90); annealed: best at 0.1 (0.95 mean of 0.94 and 0.96). steepest (0.01)
    is exact under constant, basin (0.1) under annealed; Tuner has no pick on seed 1: a miss, not a number."""
    table = {("constant", 0.01): (0.90, 0.90), ("constant", 0.1): (0.87, 0.88), ("constant", 1.0): (0.1, 0.1),
             ("annealed", 0.01): (0.80, 0.80), ("annealed", 0.1): (0.94, 0.96), ("annealed", 1.0): (0.92, 0.92)}
    _cache(tmp_path, "t", lambda p, lr, s: table[(p, lr)][s])
    row = lfs._gaps("t", str(tmp_path), SEEDS, GRID)
    assert row["best"] == {"constant": (0.01, pytest.approx(0.90)), "annealed": (0.1, pytest.approx(0.95))}
    r = row["rules"]
    assert r[("constant", "steepest")]["gap"] == pytest.approx(0.0)
    assert r[("constant", "basin")]["gap"] == pytest.approx(-2.5)
    assert r[("constant", "valley")]["gap"] == pytest.approx(100 * ((0.90 + 0.88) / 2 - 0.90))  # paired per seed
    assert r[("annealed", "peak")]["gap"] == pytest.approx(-3.0)
    assert r[("constant", "auto")] == r[("constant", "steepest")] and r[("annealed", "auto")] == r[("annealed", "basin")]
    assert math.isnan(r[("constant", "tuner")]["gap"])
    md = lfs.report([row], SEEDS)
    assert "1. The product's pick (`auto`): PASSES: within 2 points on 1/1 tasks under the constant" in md
    assert "2. `basin` as the annealed rule: STAYS (1/1 within 2 points annealed). Under the issue's literal " \
           "wording (both protocols): goes (0/1 within 2 points under a constant LR)." in md
    assert "| Lightning Tuner | 0.1: **no pick** |" in md
    assert lfs.PREREGISTRATION in md


def test_a_miss_fails_the_product(tmp_path):
    _cache(tmp_path, "t", lambda p, lr, s: 0.5 if (p, lr) == ("annealed", 0.1) else 0.9)
    md = lfs.report([lfs._gaps("t", str(tmp_path), SEEDS, GRID)], SEEDS)
    assert "1. The product's pick (`auto`): FAILS" in md and "`basin` as the annealed rule: GOES to the lab" in md


def test_a_task_resumes_from_its_cache(tmp_path, monkeypatch):
    """The second call runs no range test and no training: everything is read back from the CSVs."""
    calls = []
    monkeypatch.setattr(lfs, "train", lambda spec, protocol, lr, seed, root: calls.append((protocol, lr, seed)) or 0.5)
    spec = {**lfs.FRESH_TASKS["digits_mlp128_sgd_b256"], "epochs": 1}
    lfs.run_task("t", spec, (0,), (0.1,), str(tmp_path))
    picks = lfs._read(tmp_path / "t" / "picks.csv")
    assert [p["rule"] for p in picks] == ["steepest", "basin", "valley", "peak", "tuner"]
    expected = {(p, lr) for p in lfs.PROTOCOLS for lr in [0.1, *(float(r["lr"]) for r in picks)] if math.isfinite(lr)}
    assert {(p, lr) for p, lr, _ in calls} == expected and len(calls) == len(expected)
    monkeypatch.setattr(lfs, "_tuner", lambda *a: pytest.fail("the range test ran again"))
    lfs.run_task("t", spec, (0,), (0.1,), str(tmp_path))
    assert len(calls) == len(expected)


@pytest.mark.slow
def test_quick_mode_runs_end_to_end(tmp_path):
    lfs.main(["--quick", "--out", str(tmp_path)])
    md = (tmp_path / "report.md").read_text()
    assert "Quick mode: a smoke test, not evidence." in md and "### Annealed protocol" in md
    rows = lfs._read(tmp_path / "digits_mlp128_sgd_b256" / "trainings.csv")
    assert all(0.0 <= float(r["acc"]) <= 1.0 for r in rows) and {r["protocol"] for r in rows} == set(lfs.PROTOCOLS)
