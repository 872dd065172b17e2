"""The suggestion rules on synthetic loss curves whose steepest point is known."""

from __future__ import annotations

import numpy as np
import pytest

from lr_plugins.finder.range_test import DivergenceMonitor, ramp
from lr_plugins.finder.suggest import smooth, steepest, suggest, valley

LRS = np.geomspace(1e-6, 10.0, 100)
X = np.log10(LRS)


def sigmoid_curve(x0: float, width: float = 0.5, blowup: float | None = 0.3) -> np.ndarray:
    """``2 - tanh((x - x0) / width)``: steepest fall exactly at ``x = x0``; optional blow-up after."""
    y = 2.0 - np.tanh((X - x0) / width)
    if blowup is not None:
        y = y + np.where(X > blowup, 30.0 * (X - blowup) ** 2, 0.0)
    return y


@pytest.mark.parametrize("x0", [-4.0, -2.5, -1.0])
def test_steepest_on_clean_curve(x0):
    s = suggest(LRS, sigmoid_curve(x0, blowup=x0 + 1.5))
    assert abs(np.log10(s.suggestions["steepest"]) - x0) < 0.1
    assert s.warnings == []


def test_steepest_with_noise_and_spikes():
    rng = np.random.default_rng(0)
    y = sigmoid_curve(-2.0) + rng.normal(0, 0.08, len(LRS))
    spikes = rng.choice(np.arange(5, 95), 8, replace=False)
    y[spikes] += 3.0  # isolated spikes, much taller than the descent's per-point change
    s = suggest(LRS, y)
    assert abs(np.log10(s.suggestions["steepest"]) + 2.0) < 0.25
    # The pick stays before the minimum of the smoothed curve.
    assert s.index["steepest"] <= s.index["minimum"]


def test_pick_is_before_the_minimum_even_when_the_blowup_is_steeper():
    # Slopes after the minimum are positive, but a raw-LR derivative (Lightning >= 2.5.3) or an
    # unrestricted argmin of |slope| would jump elsewhere; ours must stay on the descent.
    y = sigmoid_curve(-3.0, blowup=-1.0)
    s = suggest(LRS, y)
    assert abs(np.log10(s.suggestions["steepest"]) + 3.0) < 0.1


def test_causal_ema_would_lag_but_zero_phase_does_not():
    y = sigmoid_curve(-2.0)
    m = DivergenceMonitor(threshold=1e9, beta=0.98)
    for v in y:
        m.update(float(v))
    ema = np.array(m.history)
    lag_pick = LRS[int(np.argmin(np.gradient(ema, X)[: int(np.argmin(ema)) + 1]))]
    ours = steepest(LRS, smooth(y))
    assert np.log10(lag_pick) + 2.0 > 0.5  # the EMA's steepest point sits half a decade or more to the right
    assert abs(np.log10(ours) + 2.0) < 0.1


def test_never_descending_warns_no_clear_descent():
    rng = np.random.default_rng(1)
    s = suggest(LRS, 2.0 + rng.normal(0, 0.01, len(LRS)))
    assert any("no clear descent" in w and "raise max_lr" in w for w in s.warnings)


def test_diverging_from_the_start_warns():
    s = suggest(LRS[:40], np.exp(np.linspace(0, 3, 40)))
    assert any("no clear descent" in w and "lower min_lr" in w for w in s.warnings)


def test_too_few_points_warns_with_hint():
    s = suggest(LRS[:6], np.array([2.0, 1.9, 1.7, 1.5, 1.4, 9.0]))
    assert any("only 6 points" in w and "max_lr" in w for w in s.warnings)


def test_minimum_at_right_edge_warns():
    s = suggest(LRS, 2.0 - np.tanh((X - 0.8) / 0.3))
    assert any("right edge" in w and "Raise max_lr" in w for w in s.warnings)


def test_descent_at_left_edge_warns():
    s = suggest(LRS, sigmoid_curve(-6.5, width=0.5, blowup=-3.0))
    assert any("left edge" in w and "Lower min_lr" in w for w in s.warnings)


def test_no_points():
    s = suggest(np.array([]), np.array([]))
    assert np.isnan(s.suggestions["steepest"]) and s.warnings


def test_minimum_tenth_and_valley():
    y = sigmoid_curve(-2.0)
    s = suggest(LRS, y)
    i_min = int(np.argmin(s.smoothed))
    assert s.suggestions["minimum/10"] == pytest.approx(LRS[i_min] / 10)
    # fastai's valley on 61 strictly decreasing points: its start is max_end - length = 60 - 61 = -1,
    # sections = 61 / 3, index = -1 + int(20.33) + int(10.17) = 29 (fastai's code, off-by-one included).
    v = np.concatenate([np.linspace(10, 0, 61), np.linspace(1, 5, 39)])
    assert valley(v) == 29
    assert s.index["valley"] < i_min


def test_smooth_is_zero_phase():
    # A symmetric dip stays centred: the smoother does not shift features to the right.
    y = 1.0 - np.exp(-0.5 * ((np.arange(101) - 50) / 6.0) ** 2)
    assert int(np.argmin(smooth(y))) == 50
    assert int(np.argmin(smooth(y, sigma=8.0))) == 50


def test_ramp_matches_numpy_references():
    np.testing.assert_allclose(ramp(1e-7, 10.0, 100), np.geomspace(1e-7, 10.0, 100), rtol=1e-12)
    np.testing.assert_allclose(ramp(0.01, 1.0, 7, "linear"), np.linspace(0.01, 1.0, 7), rtol=1e-12)


def test_divergence_monitor_bias_correction_starts_at_the_first_loss():
    m = DivergenceMonitor(threshold=4.0)
    assert not m.update(2.5)
    assert m.history[0] == pytest.approx(2.5)  # not (1 - beta) * 2.5 as with a global-step correction
    assert m.best == pytest.approx(2.5)


def test_peak_is_three_times_steepest_when_the_minimum_is_far():
    """``2 - tanh((x + 3) / 0.5)`` with the blow-up at x = -1: the steepest point is x = -3, the minimum
    ~2 decades right of it, so ``peak`` = 3 x steepest exactly (log10 3 = 0.477 decades right)."""
    s = suggest(LRS, sigmoid_curve(-3.0, blowup=-1.0))
    assert s.suggestions["peak"] == pytest.approx(3.0 * s.suggestions["steepest"], rel=1e-12)
    assert np.log10(s.suggestions["peak"]) == pytest.approx(-3.0 + np.log10(3.0), abs=0.1)
    assert s.suggestions["peak"] < LRS[s.index["minimum"]]


def test_peak_is_capped_at_one_and_a_half_times_the_loss_minimum():
    """The blow-up starts where the descent is steepest, so the smoothed minimum is only ~0.3 decades right
    of the steepest point: 3 x steepest (0.48 decades) would be more than 1.5x past the minimum (where the
    test's loss stopped falling), so ``peak`` is 1.5x the LR at the smoothed minimum."""
    y = sigmoid_curve(-2.0, blowup=-2.0)
    s = suggest(LRS, y)
    lr_min = LRS[s.index["minimum"]]
    assert 3.0 * s.suggestions["steepest"] > 1.5 * lr_min
    assert s.suggestions["peak"] == pytest.approx(1.5 * lr_min, rel=1e-12)
    assert s.suggestions["peak"] == pytest.approx(15 * s.suggestions["minimum/10"], rel=1e-12)


def test_peak_on_a_curve_that_never_descends_is_the_first_lr():
    s = suggest(LRS, 1.0 + X - X[0])
    assert s.suggestions["peak"] == LRS[0] == s.suggestions["steepest"]


def test_peak_never_exceeds_the_last_lr_tested():
    """Still falling at the end of the range (the minimum is the last point): 1.5x the minimum would be
    an LR the test never tried, so ``peak`` stops at ``lrs[-1]``."""
    y = sigmoid_curve(0.7, blowup=None)  # steepest at 10**0.7 = 5, minimum at the last point, 10
    s = suggest(LRS, y)
    assert s.index["minimum"] == len(LRS) - 1
    assert 3.0 * s.suggestions["steepest"] > LRS[-1]
    assert s.suggestions["peak"] == LRS[-1]
    assert any("right edge" in w for w in s.warnings)


def long_descent() -> np.ndarray:
    """Flat at 3 up to x = -4, a straight fall to 1 at x = -1 (3 decades), then a steep blow-up."""
    y = np.where(X < -4, 3.0, 3.0 - (X + 4) * 2.0 / 3.0)
    return np.where(X > -1, 1.0 + 30.0 * (X + 1) ** 2, y)


def test_basin_on_a_long_descent():
    """A straight fall over 3 decades: ``basin`` = 0.675 sqrt(left(0.4) right(0.3)); on the straight part
    ``left(0.4)`` inverts exactly, x = -4 + 1.5 (3 - level), and the right crossing is a few points
    into the steep blow-up after the minimum."""
    from lr_plugins.finder.suggest import basin, level_crossings

    y = long_descent()
    s = suggest(LRS, y)
    sm = s.smoothed
    lr_min = LRS[s.index["minimum"]]
    assert s.suggestions["basin"] == basin(LRS, sm)
    level = sm.min() + 0.4 * (sm[:10].mean() - sm.min())
    left, _ = level_crossings(LRS, sm, 0.4)
    assert np.log10(left) == pytest.approx(-4.0 + 1.5 * (3.0 - level), abs=0.01)
    _, right = level_crossings(LRS, sm, 0.3)
    step = X[1] - X[0]
    assert lr_min < right <= lr_min * 10 ** (6 * step)
    assert s.suggestions["basin"] == pytest.approx(0.675 * np.sqrt(left * right), rel=1e-12)
    # Well below the minimum on a long descent (the CNN tasks' best peak is 0.13-0.7x theirs).
    assert s.suggestions["basin"] < 0.5 * lr_min


def test_basin_on_a_curve_that_never_descends_is_the_first_lr():
    y = 1.0 + X - X[0]
    assert suggest(LRS, y).suggestions["basin"] == LRS[0]


def test_level_crossing_right_of_a_minimum_that_never_climbs_back_is_the_last_lr():
    from lr_plugins.finder.suggest import level_crossings

    y = sigmoid_curve(-2.0, blowup=None)  # falls, then flat: never back up to 30% of the descent
    assert level_crossings(LRS, smooth(y), 0.3)[1] == LRS[-1]
