"""The schedule-claim benchmarks (wsd_vs_cosine, linear_to_zero, cooldown_branches): their statistics against
scipy, and their ``--quick`` runs, whose LR curves are checked against the papers' formulas written out here."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import _claims, cooldown_branches, linear_to_zero, wsd_vs_cosine

PEAK = _claims.PEAK_LR
SPE = _claims.QUICK_TRAINER["limit_train_batches"]  # optimizer steps per epoch in --quick


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _curves(path: Path, key: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in _read(path):
        out.setdefault(r[key], []).append(float(r["lr"]))
    return out


def _wsd(k: int, total: int, shape: str = "1-sqrt", warmup: int = SPE, decay: float = 0.2) -> float:
    """Hägele et al. 2024: linear warmup, the peak, then over the last ``decay`` of training
    ``1 - sqrt(p)`` (or ``1 - p``) of the peak, ``p`` the fraction of the cooldown done."""
    start = (1 - decay) * total
    if k < warmup:
        return PEAK * k / warmup
    if k < start:
        return PEAK
    p = (k - start) / (total - start)
    return PEAK * ((1 - math.sqrt(p)) if shape == "1-sqrt" else (1 - p))


def _cosine(k: int, total: int, floor: float, warmup: int = SPE, peak: float = PEAK) -> float:
    if k < warmup:
        return peak * k / warmup
    p = (k - warmup) / (total - warmup)
    return floor * peak + (1 - floor) * peak * (1 + math.cos(math.pi * p)) / 2


# ---------------------------------------------------------------------- statistics
def test_paired_interval_is_scipys_paired_t_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.2, 0.05, 7), rng.normal(0.25, 0.05, 7)
    d = _claims.paired(a, b)
    from scipy import stats

    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (d["lo"], d["hi"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert d["mean"] == pytest.approx(float(np.mean(a - b))) and d["std"] == pytest.approx(float(np.std(a - b, ddof=1)))
    assert d["a_higher"] + d["a_lower"] + d["equal"] == 7
    assert _claims.mean_std([0.9, 0.95, 1.0]) == pytest.approx((0.95, 0.05))


def test_verdicts_read_the_interval():
    assert _claims.verdict([-0.02, -0.03, -0.025, -0.02], "beats", "test_loss") == "reproduced"  # lower loss
    assert _claims.verdict([0.02, 0.03, 0.025, 0.02], "beats", "test_loss") == "not reproduced (B is better)"
    assert _claims.verdict([0.5, -0.4, 0.1, -0.2], "beats", "test_acc").startswith("not separated")
    assert _claims.verdict([0.001, -0.002, 0.0, 0.001], "matches", "test_loss") == "reproduced"  # inside +-0.02
    assert _claims.verdict([0.1, 0.12, 0.11], "matches", "test_loss") == "not reproduced (B is better)"
    assert _claims.verdict([0.0, 0.9, -0.9], "matches", "test_acc").startswith("inconclusive")
    with pytest.raises(ValueError, match="claim='ties'"):
        _claims.verdict([0.0, 0.1], "ties", "test_acc")


# ---------------------------------------------------------------------- quick runs
def test_wsd_vs_cosine_quick_run(tmp_path):
    rows = wsd_vs_cosine.main(["--quick", "--out", str(tmp_path), "--no-docs"])
    assert [(r["schedule"], r["seed"]) for r in rows] == [(s, seed) for seed in (0, 1) for s in wsd_vs_cosine.SCHEDULES]
    total = 3 * SPE
    assert {r["steps"] for r in rows} == {total}  # an equal budget
    assert all(0.0 <= r["test_acc"] <= 1.0 and r["test_loss"] > 0 for r in rows)
    curves = _curves(tmp_path / "lr_seed0.csv", "schedule")
    assert curves["WSD 1-sqrt"] == pytest.approx([_wsd(k, total) for k in range(total)], rel=1e-12, abs=1e-15)
    assert curves["WSD linear"] == pytest.approx([_wsd(k, total, "linear") for k in range(total)], rel=1e-12, abs=1e-15)
    assert curves["cosine to 10%"] == pytest.approx([_cosine(k, total, 0.1) for k in range(total)], rel=1e-12)
    assert curves["cosine to 0"] == pytest.approx([_cosine(k, total, 0.0) for k in range(total)], rel=1e-12, abs=1e-15)
    summary = (tmp_path / "summary.md").read_text()
    assert "Quick mode" in summary and "| WSD 1-sqrt − cosine to 10% | test loss |" in summary
    assert {p.name for p in tmp_path.iterdir()} == {"runs.csv", "lr_seed0.csv", "summary.md", "wsd_vs_cosine.png"}


def test_linear_to_zero_quick_run_with_another_peak(tmp_path):
    rows = linear_to_zero.main(["--quick", "--peak-lr", "0.02", "--out", str(tmp_path), "--no-docs"])
    assert len(rows) == 2 * len(linear_to_zero.SCHEDULES)
    total, peak = 3 * SPE, 0.02
    curves = _curves(tmp_path / "lr_seed0.csv", "schedule")
    # Bergsma et al.: linear from the peak after the warmup to 0 at the end of training.
    linear = [peak * k / SPE if k < SPE else peak * (1 - (k - SPE) / (total - SPE)) for k in range(total)]
    assert curves["linear to 0"] == pytest.approx(linear, rel=1e-12, abs=1e-15)
    assert curves["cosine to 10%"] == pytest.approx([_cosine(k, total, 0.1, peak=peak) for k in range(total)], rel=1e-12)
    summary = (tmp_path / "summary.md").read_text()
    assert "| linear to 0 − cosine to 10% | test loss |" in summary and "AdamW (peak LR 0.02," in summary


def test_cooldown_branches_quick_run(tmp_path):
    """Lengths 5, 6, 8 epochs, branches after 4: the stem runs once, each branch only its cooldown, and every
    step's LR (stem + branch) is the WSD curve of the branch's own length."""
    rows = cooldown_branches.main(["--quick", "--out", str(tmp_path), "--no-docs"])
    for seed in (0, 1):
        mine = {(r["approach"], r["part"], r["length"]): r for r in rows if r["seed"] == seed}
        assert mine[("WSD", "stem", 4)]["steps"] == 4 * SPE
        for length in (5, 6, 8):
            assert mine[("WSD", "branch", length)]["steps"] == (length - 4) * SPE
            assert mine[("cosine", "run", length)]["steps"] == length * SPE
            assert mine[("WSD", "branch", length)]["max_lr_error"] == 0.0
        assert sum(r["steps"] for r in mine.values() if r["approach"] == "WSD") == (4 + 1 + 2 + 4) * SPE
    curves = _curves(tmp_path / "lr_seed0.csv", "curve")
    for length in (5, 6, 8):
        total = length * SPE
        assert curves[f"WSD {length}"] == pytest.approx([_wsd(k, total) for k in range(total)], rel=1e-12, abs=1e-15)
    summary = (tmp_path / "summary.md").read_text()
    assert f"| {(4 + 1 + 2 + 4) * SPE} | {11 / 19:.0%} |" in summary and f"| {19 * SPE} | 100% |" in summary
    assert "max abs difference 0 over 6 branches" in summary


def test_cooldown_branches_refuses_a_stem_past_a_decay(capsys):
    with pytest.raises(SystemExit):
        cooldown_branches.main(["--quick", "--lengths", "5", "10", "--branch-at", "5"])
    assert "--branch-at <= 0.8 x the shortest length" in capsys.readouterr().err
