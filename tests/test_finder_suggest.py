"""The pick rules and their registry, on synthetic loss curves whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from lr_plugins.finder.curve import LossCurve, smooth, start_level
from lr_plugins.finder.range_test import DivergenceMonitor, ramp
from lr_plugins.finder.rules import RULES, rule, steepest, valley_index
from lr_plugins.finder.suggest import suggest

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
    ours = steepest(LossCurve.from_losses(LRS, y))
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
    assert valley_index(v) == 29
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


def test_registry_is_the_one_list_of_rules():
    """The product's rules, in order; ``peak`` and ``basin`` moved to the lab; LRFinder accepts exactly auto + the registry."""
    from lr_plugins import LRFinder

    assert list(RULES) == ["steepest", "valley", "minimum/10"]
    assert set(suggest(LRS, sigmoid_curve(-2.0)).suggestions) == set(RULES)
    for gone in ("peak", "basin"):
        with pytest.raises(ValueError, match=rf"suggestion='{gone}'.*'auto', 'steepest', 'valley', 'minimum/10'\.$"):
            LRFinder(suggestion=gone)
    with pytest.raises(ValueError, match="taken"):
        rule("steepest")(lambda curve: 1.0)
    with pytest.raises(ValueError, match="taken"):
        rule("auto")(lambda curve: 1.0)


def test_a_new_rule_is_one_registered_function():
    """Registering one function makes it a value LRFinder accepts, a pick of every result, and a figure marker."""
    from lr_plugins import LRFinder
    from lr_plugins.finder.result import LRFinderResult

    @rule("start/100", marker="*", color="tab:pink")
    def start_hundredth(curve: LossCurve) -> float:
        """The first LR tested times 100."""
        return float(curve.lrs[0]) * 100

    try:
        assert LRFinder(suggestion="start/100").suggestion == "start/100"
        s = suggest(LRS, sigmoid_curve(-2.0))
        assert s.suggestions["start/100"] == pytest.approx(LRS[0] * 100)
        assert s.index["start/100"] == round(2 / 7 * 99)  # 2 decades into a 7-decade, 100-point ramp
        r = LRFinderResult(lrs=list(LRS), losses=list(sigmoid_curve(-2.0)), smoothed=list(s.smoothed), ema=[],
                           suggestion=s.suggestions["steepest"], suggestions=s.suggestions)
        labels = r.plot().axes[0].get_legend_handles_labels()
        line = [h for h, label in zip(*labels) if label.startswith("start/100")][0]
        assert line.get_marker() == "*" and RULES["start/100"].summary == "The first LR tested times 100."
    finally:
        RULES.pop("start/100")


def test_every_rule_has_one_signature():
    c = LossCurve.from_losses(LRS, sigmoid_curve(-2.0))
    for name, r in RULES.items():
        lr = r.pick(c)
        assert isinstance(lr, float) and LRS[0] / 100 <= lr <= LRS[-1], name


def test_one_starting_level():
    """The starting level is one definition (the no-descent check and the figure read it)."""
    y = sigmoid_curve(-2.0)
    c = LossCurve.from_losses(LRS, y)
    assert c.start == start_level(c.smoothed) == pytest.approx(np.mean(c.smoothed[:10]))
    # A curve whose first 3 points are a spike above a flat start: the spike does not raise the level
    # enough to fake a descent (s[0] would: a 20% "fall" from a single high first point).
    flat = np.full(100, 2.0) + np.random.default_rng(3).normal(0, 0.005, 100)
    flat[0] = 2.6
    assert any("no clear descent" in w for w in suggest(LRS, flat).warnings)
