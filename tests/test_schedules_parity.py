"""The pure curves against independent references: torch's schedulers and the papers' formulas.

No Trainer here: ``preview``/``lr_at`` are compared step by step over thousands of optimizer
steps with ``rtol=1e-12`` (values are kept away from 0 so a relative tolerance is meaningful).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tl

from lr_plugins import (
    SGDR,
    Constant,
    CyclicLR,
    ExponentialDecay,
    InverseTimeDecay,
    OneCycle,
    StepDecay,
    WarmupCosine,
)

RTOL = 1e-12


def torch_trace(make_sched, n: int, lr: float = 1.0, optimizer: str = "sgd"):
    """LR and momentum (SGD ``momentum`` or Adam ``betas[0]``) that torch gives steps 0..n-1."""
    p = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "adam":
        opt = torch.optim.Adam([p], lr=lr)
    else:
        opt = torch.optim.SGD([p], lr=lr, momentum=0.9)
    sched = make_sched(opt)
    lrs, moms = [], []
    for _ in range(n):
        g = opt.param_groups[0]
        lrs.append(g["lr"])
        moms.append(g["betas"][0] if "betas" in g else g["momentum"])
        opt.step()
        sched.step()
    return np.array(lrs), np.array(moms)


def close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=0)


# ---------------------------------------------------------------------- cosine annealing
@pytest.mark.parametrize("n,eta_min", [(3000, 1e-3), (5000, 0.05), (1000, 0.2)])
def test_warmup_cosine_equals_torch_cosine_annealing(n, eta_min):
    """Against torch's stepped (recursive) values and its ``_get_closed_form_lr``, both to 1e-12.

    Finding: with torch 2.13 the recursion stays within ~2e-14 of the closed form over 5000
    steps (eta_min > 0), so it does not drift beyond 1e-12 here; the drift of pytorch#65342 comes
    from resume and outside LR changes, which a closed form cannot have.
    """
    ours = WarmupCosine(max_lr=1.0, min_lr=eta_min, unit="step").preview(n)
    stepped, _ = torch_trace(lambda o: tl.CosineAnnealingLR(o, T_max=n, eta_min=eta_min), n)
    p = torch.nn.Parameter(torch.zeros(1))
    sched = tl.CosineAnnealingLR(torch.optim.SGD([p], lr=1.0), T_max=n, eta_min=eta_min)
    closed = []
    for k in range(n):
        sched.last_epoch = k
        closed.append(sched._get_closed_form_lr()[0])
    close(ours, closed)
    close(ours, stepped)
    exact = eta_min + (1 - eta_min) * (1 + np.cos(np.pi * np.arange(n) / n)) / 2
    close(ours, exact)


def test_warmup_cosine_with_warmup_and_hold_formula():
    s = WarmupCosine(max_lr=0.4, min_lr=0.01, warmup=1.5, hold=2, warmup_start_lr=0.02, unit="epoch")
    spe, n = 8, 160
    got = s.preview(n, steps_per_epoch=spe)
    for k in range(n):
        t = k / spe
        if t < 1.5:
            want = 0.02 + (0.4 - 0.02) * t / 1.5
        elif t < 3.5:
            want = 0.4
        else:
            p = (t - 3.5) / (n / spe - 3.5)
            want = 0.01 + (0.4 - 0.01) * (1 + math.cos(math.pi * p)) / 2
        assert got[k] == pytest.approx(want, rel=RTOL, abs=1e-15), k


# ---------------------------------------------------------------------- SGDR
@pytest.mark.parametrize("t0,mult", [(10, 1), (7, 2), (3, 3), (50, 1)])
def test_sgdr_equals_torch_warm_restarts(t0, mult):
    n, eta_min = 4000, 1e-3
    ours = SGDR(max_lr=0.5, min_lr=eta_min, cycle_length=t0, cycle_mult=mult, unit="step").preview(n)
    ref, _ = torch_trace(lambda o: tl.CosineAnnealingWarmRestarts(o, T_0=t0, T_mult=mult, eta_min=eta_min), n, lr=0.5)
    close(ours, ref)


def sgdr_eq5(n, spe, t0, mult, decay, lo, hi, warmup=0.0, warmup_start=0.0):
    """Eq. (5) of Loshchilov & Hutter (2017), simulated: T_cur advances 1/spe every step."""
    lrs = []
    t_cur, t_i, top = None, float(t0), hi
    for k in range(n):
        t = k / spe
        if t < warmup:
            lrs.append(warmup_start + (hi - warmup_start) * t / warmup)
            continue
        if t_cur is None:  # the first step after warmup: T_cur counts from the end of the warmup
            t_cur = t - warmup
        while t_cur >= t_i - 1e-9:  # restart: T_cur wraps, the next cycle is longer and lower
            t_cur -= t_i
            t_i *= mult
            top = max(lo, top * decay)  # a peak decayed below eta_min holds eta_min
        lrs.append(lo + 0.5 * (top - lo) * (1 + math.cos(math.pi * t_cur / t_i)))
        t_cur += 1.0 / spe
    return np.array(lrs)


@pytest.mark.parametrize(
    "spe,t0,mult,decay,warmup",
    [
        (1, 4, 1.5, 1.0, 0),  # unit step, float T_mult
        (1, 10, 1.3, 0.8, 0),
        (7, 1.5, 1.5, 0.7, 0),  # fractional epochs
        (10, 2, 2.0, 0.5, 0.5),  # with warmup
        (13, 0.7, 1.25, 0.9, 1),
    ],
)
def test_sgdr_float_mult_and_decay_match_eq5(spe, t0, mult, decay, warmup):
    n = 3000
    s = SGDR(max_lr=0.3, min_lr=0.003, cycle_length=t0, cycle_mult=mult, cycle_decay=decay, warmup=warmup)
    ref = sgdr_eq5(n, spe, t0, mult, decay, 0.003, 0.3, warmup=warmup)
    # The simulation accumulates T_cur in floats: allow that noise (1e-9 rel), not a formula error.
    close(s.preview(n, steps_per_epoch=spe), ref, rtol=1e-9 if spe > 1 else RTOL)


@pytest.mark.parametrize(
    "n,spe,mult,decay,warmup,unit",
    [
        (400, 10, 1.0, 1.0, 0, "epoch"),  # the sgdr preset: four cycles of 10 epochs
        (999, 7, 1.0, 0.8, 2, "epoch"),  # after a 2-epoch warmup: T_0 = (999/7 - 2) / 4
        (1000, 1, 1.5, 1.0, 50, "step"),  # float T_mult: T_0 is still a quarter, the cycles are longer
        (333, 5, 1.0, 1.0, 0.1, "fraction"),
    ],
)
def test_sgdr_cycle_length_none_is_a_quarter_of_training_after_warmup(n, spe, mult, decay, warmup, unit):
    """T_0 = (T - warmup) / 4, T the training in units; eq. 5 simulated with that T_0."""
    s = SGDR(max_lr=0.3, min_lr=0.003, cycle_length=None, cycle_mult=mult, cycle_decay=decay, warmup=warmup, unit=unit)
    units = {"epoch": n / spe, "step": n, "fraction": 1.0}[unit]
    t0 = (units - warmup) / 4
    per_unit = {"epoch": spe, "step": 1, "fraction": n}[unit]
    ref = sgdr_eq5(n, per_unit, t0, mult, decay, 0.003, 0.3, warmup=warmup)
    close(s.preview(n, steps_per_epoch=spe), ref, rtol=1e-9)
    explicit = SGDR(max_lr=0.3, min_lr=0.003, cycle_length=t0, cycle_mult=mult, cycle_decay=decay, warmup=warmup,
                    unit=unit)
    assert s.cycle_ends(n, spe) == explicit.cycle_ends(n, spe)
    assert [s.cycle_at(k, spe, n) for k in range(0, n, 37)] == [explicit.cycle_at(k, spe, n) for k in range(0, n, 37)]
    if mult == 1.0:  # four whole cycles, the last one ending with training
        assert len(s.cycle_ends(n, spe)) == 4 and s.cycle_ends(n, spe)[-1] == n - 1


def test_sgdr_cycle_length_none_needs_the_length_of_training():
    s = SGDR(max_lr=0.1, cycle_length=None)
    assert s.needs_total and s.config()["cycle_length"] is None
    for call in (lambda: s.lr_at(3), lambda: s.cycle_at(3)):
        with pytest.raises(ValueError, match=r"total_steps=None is not allowed: SGDR needs total_steps.*"
                                             r"cycle_length=None makes the first cycle 1/4 of it"):
            call()
    with pytest.raises(ValueError, match=r"total_steps=0 is not allowed with cycle_length=None"):
        s.preview(0)
    with pytest.raises(ValueError, match=r"no training is left after the warmup"):  # warmup = all of training
        SGDR(max_lr=0.1, cycle_length=None, warmup=2).cycle_ends(20, steps_per_epoch=10)
    assert SGDR(cycle_length=None, unit="step").lr_at(0, total_steps=1) == 1.0  # a 1-step fast_dev_run
    with pytest.raises(TypeError, match="cycle_length='10' is not allowed: cycle_length must be a finite number in "
                                        r"\[1e-06, inf\) or None"):
        SGDR(cycle_length="10")


def test_sgdr_cycle_ends_are_the_restarts():
    s = SGDR(max_lr=1.0, cycle_length=3, cycle_mult=1.5, unit="step")
    lrs = s.preview(200)
    ups = [k for k in range(199) if lrs[k + 1] > lrs[k]]
    assert s.cycle_ends(200) == ups
    assert [s.cycle_at(k) for k in (0, 2, 3, 7, 8)] == [0, 0, 1, 1, 2]


# ---------------------------------------------------------------------- cyclic and 1cycle
@pytest.mark.parametrize("mode,gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.9995)])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cyclic_lr_and_momentum_equal_torch(mode, gamma, optimizer):
    n, step = 3000, 37
    ours = CyclicLR(max_lr=0.8, min_lr=0.1, step_size=step, mode=mode, gamma=gamma, unit="step")
    ref_lr, ref_m = torch_trace(
        lambda o: tl.CyclicLR(o, base_lr=0.1, max_lr=0.8, step_size_up=step, mode=mode, gamma=gamma,
                              cycle_momentum=True, base_momentum=0.85, max_momentum=0.95),
        n,
        optimizer=optimizer,
    )
    close(ours.preview(n), ref_lr)
    close(ours.preview_momentum(n), ref_m)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("n,pct", [(3000, 0.3), (2001, 0.25), (1000, 0.45)])
def test_one_cycle_lr_and_momentum_equal_torch(anneal, three_phase, n, pct):
    ours = OneCycle(max_lr=0.6, pct_start=pct, div_factor=20, final_div_factor=500, anneal=anneal,
                    three_phase=three_phase, base_momentum=0.8, max_momentum=0.93, unit="step")
    ref_lr, ref_m = torch_trace(
        lambda o: tl.OneCycleLR(o, max_lr=0.6, total_steps=n, pct_start=pct, div_factor=20, final_div_factor=500,
                                anneal_strategy=anneal, three_phase=three_phase, base_momentum=0.8,
                                max_momentum=0.93),
        n,
    )
    close(ours.preview(n), ref_lr)
    close(ours.preview_momentum(n), ref_m)


def test_one_cycle_adam_betas_equal_torch():
    n = 1500
    ours = OneCycle(max_lr=0.01, unit="step")
    _, ref_m = torch_trace(lambda o: tl.OneCycleLR(o, max_lr=0.01, total_steps=n), n, optimizer="adam")
    close(ours.preview_momentum(n), ref_m)


# ---------------------------------------------------------------------- decays
@pytest.mark.parametrize("step_size,gamma", [(100, 0.5), (7, 0.9), (1, 0.999)])
def test_step_decay_equals_torch_step_lr(step_size, gamma):
    n = 3000
    ours = StepDecay(max_lr=0.2, step_size=step_size, gamma=gamma, unit="step").preview(n)
    ref, _ = torch_trace(lambda o: tl.StepLR(o, step_size=step_size, gamma=gamma), n, lr=0.2)
    close(ours, ref)


def test_step_decay_milestones_equal_torch_multistep_lr():
    n, ms = 3000, [300, 1000, 1001, 2500]
    ours = StepDecay(max_lr=0.2, milestones=ms, gamma=0.3, unit="step").preview(n)
    ref, _ = torch_trace(lambda o: tl.MultiStepLR(o, milestones=ms, gamma=0.3), n, lr=0.2)
    close(ours, ref)


@pytest.mark.parametrize("gamma", [0.999, 0.99, 0.9])
def test_exponential_decay_equals_torch_exponential_lr(gamma):
    n = 3000
    ours = ExponentialDecay(max_lr=0.2, rate=-math.log(gamma), unit="step").preview(n)
    ref, _ = torch_trace(lambda o: tl.ExponentialLR(o, gamma=gamma), n, lr=0.2)
    # torch multiplies by gamma 3000 times: up to ~n/2 ulps of rounding, our exp() has none.
    close(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("spe", [1, 6, 12.5])
def test_exponential_and_inverse_time_formulas(spe):
    n, lr0, d = 4000, 0.3, 0.05
    t = np.arange(n) / spe
    close(ExponentialDecay(max_lr=lr0, rate=d).preview(n, steps_per_epoch=spe), lr0 * np.exp(-d * t))
    close(InverseTimeDecay(max_lr=lr0, rate=d).preview(n, steps_per_epoch=spe), lr0 / (1 + d * t))
    close(ExponentialDecay(max_lr=lr0, rate=d, staircase=True).preview(n, steps_per_epoch=spe),
          lr0 * np.exp(-d * np.floor(t + 1e-12)))
    close(InverseTimeDecay(max_lr=lr0, rate=d, staircase=True).preview(n, steps_per_epoch=spe),
          lr0 / (1 + d * np.floor(t + 1e-12)))


def test_decays_hold_their_floor():
    n = 500
    for s in (ExponentialDecay(max_lr=1.0, min_lr=0.1, rate=0.1, unit="step"),
              InverseTimeDecay(max_lr=1.0, min_lr=0.1, rate=0.1, unit="step"),
              StepDecay(max_lr=1.0, min_lr=0.1, step_size=10, gamma=0.5, unit="step")):
        lrs = s.preview(n)
        assert lrs.min() == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.1)
        assert np.all(np.diff(lrs) <= 0)


def test_constant_with_warmup():
    close(Constant(max_lr=0.5, warmup=4, unit="step").preview(6), [0, 0.125, 0.25, 0.375, 0.5, 0.5])


# ---------------------------------------------------------------------- after the end
@pytest.mark.parametrize(
    "sched,floor",
    [
        # Like torch's CosineAnnealingLR(T_max=n), step n-1 is one step short of min_lr.
        (WarmupCosine(max_lr=1.0, min_lr=0.01, warmup=5, unit="step"), 0.01),
        # Like torch's OneCycleLR, the last step (n-1) is the final LR.
        (OneCycle(max_lr=1.0, unit="step"), 1.0 / 25 / 1e4),
        (OneCycle(max_lr=1.0, three_phase=True, anneal="linear", unit="step"), 1.0 / 25 / 1e4),
    ],
    ids=repr,
)
def test_after_the_end_the_lr_holds_its_floor(sched, floor):
    n = 100
    after = [sched.lr_at(k, total_steps=n) for k in range(n, 3 * n)]
    assert after == pytest.approx([floor] * len(after), rel=1e-12)
    assert len(set(after)) == 1
    assert min(sched.preview(n)[10:]) >= after[0]


def test_lr_at_equals_preview_and_no_peak_means_one():
    s = SGDR(cycle_length=2, cycle_mult=2, warmup=1)
    prev = s.preview(90, steps_per_epoch=9)
    assert [s.lr_at(k, steps_per_epoch=9) for k in range(90)] == prev.tolist()
    assert prev.max() == 1.0


def test_cyclic_cycle_ends_are_troughs():
    s = CyclicLR(max_lr=1.0, min_lr=0.1, step_size=1.5, unit="epoch")
    lrs = s.preview(100, steps_per_epoch=4)
    ends = s.cycle_ends(100, steps_per_epoch=4)
    assert ends == [12, 24, 36, 48, 60, 72, 84, 96]
    assert all(lrs[e] == pytest.approx(0.1) for e in ends)


# ---------------------------------------------------------------------- randomized cross-checks
@pytest.mark.parametrize("seed", range(8))
def test_random_configs_equal_torch(seed):
    """Random lengths and parameters: CyclicLR, OneCycleLR and warm restarts against torch."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(500, 2500))
    lo, hi = float(rng.uniform(0.001, 0.05)), float(rng.uniform(0.1, 1.0))
    step = int(rng.integers(1, 200))
    mode = ["triangular", "triangular2", "exp_range"][seed % 3]
    gamma = float(rng.uniform(0.999, 1.0))
    ours = CyclicLR(max_lr=hi, min_lr=lo, step_size=step, mode=mode, gamma=gamma, unit="step")
    ref, ref_m = torch_trace(lambda o: tl.CyclicLR(o, base_lr=lo, max_lr=hi, step_size_up=step, mode=mode,
                                                   gamma=gamma, base_momentum=0.85, max_momentum=0.95), n)
    close(ours.preview(n), ref)
    close(ours.preview_momentum(n), ref_m)

    pct = float(rng.uniform(0.05, 0.45))
    div, fdiv = float(rng.uniform(2, 50)), float(rng.uniform(10, 1e4))
    anneal, three = ["cos", "linear"][seed % 2], bool(seed % 4 < 2)
    ours = OneCycle(max_lr=hi, pct_start=pct, div_factor=div, final_div_factor=fdiv, anneal=anneal,
                    three_phase=three, unit="step")
    ref, ref_m = torch_trace(lambda o: tl.OneCycleLR(o, max_lr=hi, total_steps=n, pct_start=pct, div_factor=div,
                                                     final_div_factor=fdiv, anneal_strategy=anneal,
                                                     three_phase=three), n)
    close(ours.preview(n), ref)
    close(ours.preview_momentum(n), ref_m)

    t0, mult = int(rng.integers(1, 60)), int(rng.integers(1, 4))
    ours = SGDR(max_lr=hi, min_lr=lo, cycle_length=t0, cycle_mult=mult, unit="step")
    ref, _ = torch_trace(lambda o: tl.CosineAnnealingWarmRestarts(o, T_0=t0, T_mult=mult, eta_min=lo), n, lr=hi)
    close(ours.preview(n), ref)


@pytest.mark.parametrize("seed", range(8))
def test_random_float_sgdr_matches_eq5(seed):
    rng = np.random.default_rng(100 + seed)
    spe = [1, 3, 7, 10.0][seed % 4]
    t0 = float(rng.uniform(0.3, 20)) if spe > 1 else float(rng.integers(1, 40))
    mult, decay = float(rng.uniform(1.0, 2.5)), float(rng.uniform(0.5, 1.0))
    warmup = [0.0, 0.5, 2.0][seed % 3]
    s = SGDR(max_lr=0.5, min_lr=0.005, cycle_length=t0, cycle_mult=mult, cycle_decay=decay, warmup=warmup)
    n = 2000
    ref = sgdr_eq5(n, spe, t0, mult, decay, 0.005, 0.5, warmup=warmup)
    close(s.preview(n, steps_per_epoch=spe), ref, rtol=1e-9)
    # cycle_ends are the steps right before the LR jumps up (a restart).
    lrs = s.preview(n, steps_per_epoch=spe)
    restarts = [k for k in range(n - 1) if lrs[k + 1] > lrs[k] + 1e-12 and k / spe >= warmup]
    ends = s.cycle_ends(n, steps_per_epoch=spe)
    if lrs.min() == 0.005:  # the decayed peak reached the floor: later cycles are flat, no jump
        ends = [e for e in ends if lrs[e + 1] > lrs[e]]
    assert ends == restarts


def test_sgdr_decayed_peak_never_goes_below_the_floor():
    s = SGDR(max_lr=1.0, min_lr=0.1, cycle_length=10, cycle_decay=0.5, unit="step")
    lrs = s.preview(100)
    assert lrs.min() == 0.1
    assert np.all(lrs[40:] == 0.1)  # cycle 4 would peak at 1/16 < 0.1: flat at the floor
    assert s.cycle_ends(100) == [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]  # cycles still count (snapshots)
