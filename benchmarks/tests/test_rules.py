"""The lab's own pick rules (benchmarks/_rules.py) on synthetic curves with known answers, and against a real
finder result (public fields only)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import _rules
from lr_plugins.finder import smooth

LRS = np.geomspace(1e-6, 10.0, 100)
X = np.log10(LRS)
STEP = X[1] - X[0]


def sigmoid_curve(x0: float, width: float = 0.5, blowup: float | None = 0.3) -> np.ndarray:
    """``2 - tanh((x - x0) / width)``: steepest fall exactly at ``x = x0``; optional blow-up after."""
    y = 2.0 - np.tanh((X - x0) / width)
    if blowup is not None:
        y = y + np.where(blowup < X, 30.0 * (X - blowup) ** 2, 0.0)
    return y


def result(losses: np.ndarray, steepest: float, sigma: float = 2.0) -> SimpleNamespace:
    """A finder result's public fields: the curve, a smoothing of it and the product's picks (given)."""
    return SimpleNamespace(lrs=LRS, losses=losses, smoothed=smooth(losses, sigma),
                           suggestions={"steepest": steepest, "valley": 2e-4})


def test_rule_picks_on_a_known_curve():
    """On ``2 - tanh((x + 2) / 0.5)`` with a blow-up at x = -0.5: the wide-smoothed steepest at x = -2; the
    30%-steepness end where ``sech^2(u) = 0.3``, x = -2 + 0.5 arccosh(sqrt(1 / 0.3)); the minimum where the
    blow-up starts (within the smoother's reach); minimum/10 a decade left; midpoint half-way in log10(lr);
    the product's rules passed through unchanged."""
    r = result(sigmoid_curve(-2.0, blowup=-0.5), steepest=1e-2)
    picks = _rules.rule_picks(r)
    assert tuple(picks) == _rules.RULES
    x = {k: float(np.log10(v)) for k, v in picks.items()}
    assert x["steepest-wide"] == pytest.approx(-2.0, abs=STEP)
    assert x["steepest-end"] == pytest.approx(-2.0 + 0.5 * np.arccosh(np.sqrt(1 / 0.3)), abs=STEP)
    # The blow-up leaks into the smoothed curve within the Gaussian's 3 sigma (2 points each).
    assert -0.5 - 6 * STEP - 1e-9 <= x["minimum"] <= -0.5 + STEP
    assert x["minimum/10"] == pytest.approx(x["minimum"] - 1.0)
    assert x["midpoint"] == pytest.approx((-2.0 + x["minimum"]) / 2)
    assert (picks["steepest"], picks["valley"]) == (1e-2, 2e-4)


def test_peak_is_three_times_steepest_when_the_minimum_is_far_and_capped_near_it():
    far = result(sigmoid_curve(-3.0, blowup=-1.0), steepest=1e-3)
    assert _rules.rule_picks(far)["peak"] == pytest.approx(3e-3, rel=1e-12)
    near = result(sigmoid_curve(-2.0, blowup=-2.0), steepest=1e-2)
    lr_min = LRS[int(np.argmin(near.smoothed))]
    assert 1.5 * lr_min < 3e-2
    assert _rules.rule_picks(near)["peak"] == pytest.approx(1.5 * lr_min, rel=1e-12)


def test_peak_on_a_curve_that_never_descends_and_at_the_end_of_the_range():
    rising = 1.0 + X - X[0]
    assert _rules.peak(LRS, rising, steepest=1e-3) == LRS[0]
    falling = sigmoid_curve(0.7, blowup=None)  # still falling at the last LR, 10
    assert _rules.peak(LRS, falling, steepest=5.0) == LRS[-1]


def test_adaptive_is_peak_on_a_sharp_dip_and_basin_on_a_long_descent():
    dip = _rules.rule_picks(result(sigmoid_curve(-2.0, blowup=-1.7), steepest=1e-2))
    assert np.log10(dip["minimum"] / dip["steepest"]) < 0.6 and dip["adaptive"] == dip["peak"] != dip["basin"]
    y = np.where(X < -4, 3.0, 3.0 - (X + 4) * 2.0 / 3.0)  # a straight fall over 3 decades, then a blow-up
    long = _rules.rule_picks(result(np.where(X > -1, 1.0 + 30.0 * (X + 1) ** 2, y), steepest=1e-3))
    assert np.log10(long["minimum"] / long["steepest"]) > 0.6 and long["adaptive"] == long["basin"] != long["peak"]


def test_level_crossings_invert_a_straight_fall():
    """On a straight fall from 3 at x = -4 to 1 at x = -1, the level ``s_min + f (s_0 - s_min)`` is crossed at
    x = -4 + 1.5 (3 - level); on the way up, ``1 + 30 (x + 1)^2`` reaches it at x = -1 + sqrt((level - 1) / 30),
    and the right crossing is the first recorded point at or past that; right of a minimum that never climbs
    back, it is the last LR."""
    y = np.where(X < -4, 3.0, 3.0 - (X + 4) * 2.0 / 3.0)
    s = np.where(X > -1, 1.0 + 30.0 * (X + 1) ** 2, y)
    level = s.min() + 0.4 * (s[:10].mean() - s.min())
    left, right = _rules.level_crossings(LRS, s, 0.4)
    assert np.log10(left) == pytest.approx(-4.0 + 1.5 * (3.0 - level), abs=1e-9)
    x_up = -1.0 + np.sqrt((level - 1.0) / 30.0)
    assert x_up <= np.log10(right) < x_up + STEP
    flat_after = sigmoid_curve(-2.0, blowup=None)
    assert _rules.level_crossings(LRS, flat_after, 0.3)[1] == LRS[-1]
    assert _rules.level_crossings(LRS, 1.0 + X - X[0], 0.3) == (LRS[0], LRS[0])


def test_basin_on_a_sigmoid_inverts_exactly():
    """``2 - tanh((x + 2) / 0.5)`` with a blow-up at x = -0.5: on the descent ``2 - tanh(u) = level``
    inverts exactly, so left(0.4) is known; right(0.3) is a few points into the steep blow-up.
    (Moved here from tests/test_finder_suggest.py with the rule.)"""
    s = smooth(sigmoid_curve(-2.0, blowup=-0.5), 2.0)
    s0, s_min, i_min = s[:10].mean(), s.min(), int(np.argmin(s))  # the starting level: the mean of the first tenth
    left, _ = _rules.level_crossings(LRS, s, 0.4)
    assert np.log10(left) == pytest.approx(-2.0 + 0.5 * np.arctanh(2.0 - (s_min + 0.4 * (s0 - s_min))), abs=0.01)
    _, right = _rules.level_crossings(LRS, s, 0.3)
    assert X[i_min] < np.log10(right) <= X[i_min] + 6 * STEP
    assert _rules.basin(LRS, s) == pytest.approx(0.675 * np.sqrt(left * right), rel=1e-12)


def test_basin_on_a_long_descent_and_on_a_curve_that_never_descends():
    """A straight fall over 3 decades: left(0.4) inverts exactly, x = -4 + 1.5 (3 - level); the pick lies well
    below the minimum. A curve that only rises gets the first LR."""
    y = np.where(X < -4, 3.0, 3.0 - (X + 4) * 2.0 / 3.0)
    s = smooth(np.where(X > -1, 1.0 + 30.0 * (X + 1) ** 2, y), 2.0)
    level = s.min() + 0.4 * (s[:10].mean() - s.min())
    left, _ = _rules.level_crossings(LRS, s, 0.4)
    assert np.log10(left) == pytest.approx(-4.0 + 1.5 * (3.0 - level), abs=0.01)
    _, right = _rules.level_crossings(LRS, s, 0.3)
    assert _rules.basin(LRS, s) == pytest.approx(0.675 * np.sqrt(left * right), rel=1e-12)
    assert _rules.basin(LRS, s) < 0.5 * LRS[int(np.argmin(s))]
    assert _rules.basin(LRS, 1.0 + X - X[0]) == LRS[0]


def test_basin_equals_the_products_old_basin_on_the_recorded_curves():
    """Known answers: ``benchmarks/data/lr_finder_schedule/<task>/picks.csv`` holds the ``basin`` pick the
    product's rule (``lr_plugins.finder.rules.basin``, before it moved here) made on each recorded curve of
    ``curves.csv`` (15 real range tests: 5 fresh tasks x 3 seeds). Before deleting the product's rule, it was
    re-run on those curves at commit d19c40c and gave every recorded value bit for bit; the lab's copy,
    reading only the public fields ``lrs`` and ``smoothed``, must give them too."""
    import csv
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "lr_finder_schedule"
    checked = 0
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        with open(folder / "curves.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        with open(folder / "picks.csv", newline="") as f:
            recorded = {r["seed"]: float(r["lr"]) for r in csv.DictReader(f) if r["rule"] == "basin"}
        for seed, lr in recorded.items():
            curve = sorted((int(r["step"]), float(r["lr"]), float(r["smoothed"])) for r in rows if r["seed"] == seed)
            lrs, smoothed = [c[1] for c in curve], [c[2] for c in curve]
            assert _rules.basin(lrs, smoothed) == pytest.approx(lr, rel=1e-12), (folder.name, seed)
            checked += 1
    assert checked == 15


def test_smooth_clips_spikes_and_is_zero_phase():
    y = np.full(21, 1.0)
    y[10] = 50.0  # an isolated spike: the median of 3 removes it
    assert smooth(y, 2.0) == pytest.approx(np.ones(21))
    ramp = np.linspace(3.0, 1.0, 41)
    s = smooth(ramp, 2.0)
    assert s[20] == pytest.approx(ramp[20], abs=1e-9)  # symmetric kernel: no lag in the middle of a straight line


def test_the_lab_smoothing_is_the_products_on_a_real_range_test():
    """``steepest-wide`` re-smooths the raw losses with the finder's public ``smooth``, wider; with the
    finder's own width (2 points for 100 points) that function gives ``result.smoothed`` back, so the lab's
    wide variant is the product's smoothing and nothing else (the lab keeps no copy of it)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from lr_plugins import find_lr
    from lr_plugins.app.models import MLP, Classifier

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long()
    model = Classifier(MLP(in_features=8, num_classes=2, hidden=16, depth=1), num_classes=2, optimizer="sgd")
    found = find_lr(model, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), num_steps=100)
    assert len(found.lrs) >= 20
    sigma = max(1.5, len(found.lrs) / 50.0)
    assert not hasattr(_rules, "smooth") or _rules.smooth is smooth
    assert smooth(found.losses, sigma) == pytest.approx(np.asarray(found.smoothed), rel=1e-9, abs=1e-12)
    picks = _rules.rule_picks(found)
    assert picks["steepest"] == found.suggestions["steepest"] and "basin" not in found.suggestions
