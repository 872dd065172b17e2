"""Bad arguments to the closed-form calls (issue 12 item 8): one clear line, never a hang.

``lr_at``, ``preview``, ``preview_momentum``, ``cycle_at`` and ``cycle_ends`` check ``step``
(an integer >= 0), ``total_steps`` (a whole number >= 0, or None where the schedule needs no
end) and ``steps_per_epoch`` (finite, > 0) and raise ``TypeError``/``ValueError`` naming the
argument and the value. Calls that used to loop forever run under an alarm, so a regression
fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time

import numpy as np
import pytest
from test_schedules_registry import OWN

from lr_plugins import SGDR, Constant, CyclicLR, OneCycle, StepDecay, WarmupCosine
from lr_plugins.schedules import CURVES, MAX_PREVIEW_STEPS, MIN_CYCLE


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""

    def _raise(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: the call hangs")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def refused(exc, call, *words):
    """``call()`` raises ``exc`` with a one-line message containing every one of ``words``."""
    with deadline(10), pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


# ---------------------------------------------------------------------- the cases
def test_negative_step_is_refused_not_extrapolated():
    s = Constant(max_lr=0.1, warmup=2)
    assert s.lr_at(1) == pytest.approx(0.05)  # valid steps unchanged
    refused(ValueError, lambda: s.lr_at(-1), "step=-1", ">= 0")


def test_zero_steps_per_epoch_is_refused_not_divided_by():
    s = SGDR(max_lr=0.1, cycle_length=2)
    refused(ValueError, lambda: s.lr_at(5, steps_per_epoch=0), "steps_per_epoch=0", "(0.0, inf]")
    refused(ValueError, lambda: Constant(max_lr=0.1, warmup=2).lr_at(1, steps_per_epoch=0), "steps_per_epoch=0")


@pytest.mark.parametrize("spe", [math.nan, -1, math.inf, -0.5])
def test_cycle_ends_with_bad_steps_per_epoch_raises_instead_of_looping(spe):
    refused(ValueError, lambda: SGDR(max_lr=0.1, cycle_length=2).cycle_ends(100, steps_per_epoch=spe), "steps_per_epoch=")


@pytest.mark.parametrize("total", [math.nan, math.inf, -1, -5.0, 2.5])
def test_cycle_ends_with_bad_total_raises_instead_of_looping(total):
    exc = TypeError if total == 2.5 else (ValueError, TypeError)
    refused(exc, lambda: SGDR(max_lr=0.1, cycle_length=2).cycle_ends(total), "total_steps=")


def test_tiny_cycle_length_is_refused_at_construction():
    refused(ValueError, lambda: SGDR(cycle_length=1e-300), "cycle_length=1e-300", "[1e-06, inf]")
    refused(ValueError, lambda: CyclicLR(step_size=1e-300), "step_size=1e-300", "[1e-06, inf]")


@pytest.mark.parametrize("mult", [1.0, 1.5, 2.0])
def test_shortest_allowed_cycles_do_not_hang(mult):
    """Cycles far shorter than a step: every call returns quickly with an LR in [min, max]."""
    s = SGDR(max_lr=0.1, min_lr=0.01, cycle_length=MIN_CYCLE, cycle_mult=mult, unit="step")
    c = CyclicLR(max_lr=0.1, min_lr=0.01, step_size=MIN_CYCLE, unit="step")
    with deadline(20):
        for sched in (s, c):
            lrs = sched.preview(2000)
            assert np.all((lrs >= 0.01 - 1e-12) & (lrs <= 0.1 + 1e-12))
            assert 0.01 - 1e-12 <= sched.lr_at(10**15) <= 0.1 + 1e-12
            ends = sched.cycle_ends(2000)
            assert ends == sorted(set(ends)) and all(0 <= e < 2000 for e in ends)
            assert sched.cycle_at(1999) >= sched.cycle_at(0)


def test_preview_is_bounded_with_a_clear_error():
    s = Constant(max_lr=0.1)
    msg = refused(ValueError, lambda: s.preview(10**12), "total_steps=1000000000000", str(MAX_PREVIEW_STEPS))
    assert "[0, 10000000]" in msg
    refused(ValueError, lambda: s.preview_momentum(MAX_PREVIEW_STEPS + 1), "total_steps=")
    assert len(s.preview(1000)) == 1000


def test_huge_step_with_tiny_steps_per_epoch_is_refused():
    refused(ValueError, lambda: SGDR(cycle_length=1).lr_at(10**15, steps_per_epoch=1e-300), "steps_per_epoch=1e-300")
    refused(ValueError, lambda: Constant().lr_at(2**53), "step=9007199254740992", "< 2**53")


# ---------------------------------------------------------------------- every entry point, every schedule
# The smallest valid arguments of every registered schedule: OWN, from test_schedules_registry.


def _every(name):
    return CURVES[name](max_lr=0.1, **OWN.get(name, {}))


def _calls(s):
    calls = {
        "lr_at(step)": lambda v: s.lr_at(v, total_steps=10),
        "lr_at(total_steps)": lambda v: s.lr_at(0, total_steps=v),
        "lr_at(steps_per_epoch)": lambda v: s.lr_at(0, total_steps=10, steps_per_epoch=v),
        "preview(total_steps)": lambda v: s.preview(v),
        "preview(steps_per_epoch)": lambda v: s.preview(10, steps_per_epoch=v),
        "preview_momentum(total_steps)": lambda v: s.preview_momentum(v),
    }
    if hasattr(s, "cycle_ends"):
        calls |= {
            "cycle_at(step)": lambda v: s.cycle_at(v),
            "cycle_at(steps_per_epoch)": lambda v: s.cycle_at(0, steps_per_epoch=v),
            "cycle_ends(total_steps)": lambda v: s.cycle_ends(v),
            "cycle_ends(steps_per_epoch)": lambda v: s.cycle_ends(10, steps_per_epoch=v),
        }
    return calls


BAD = {
    "step": [(-1, ValueError), (1.5, TypeError), ("3", TypeError), (None, TypeError), (True, TypeError),
             (math.nan, TypeError)],
    "total_steps": [(-1, ValueError), (2.5, TypeError), ("10", TypeError), (math.inf, TypeError),
                    (math.nan, TypeError), (True, TypeError)],
    "steps_per_epoch": [(0, ValueError), (-2, ValueError), (math.nan, ValueError), (math.inf, ValueError),
                        ("8", TypeError), (None, TypeError)],
}


@pytest.mark.parametrize("name", list(CURVES))
def test_every_entry_point_refuses_every_bad_argument(name):
    s = _every(name)
    for call_name, call in _calls(s).items():
        arg = call_name.split("(")[1].rstrip(")")
        for value, exc in BAD[arg]:
            if value is None and call_name.startswith(("preview", "cycle_ends")):
                exc = TypeError
            msg = refused((TypeError, ValueError), lambda call=call, value=value: call(value), f"{arg}=")
            assert repr(value) in msg, (call_name, value, msg)
            with pytest.raises(exc):
                call(value)


@pytest.mark.parametrize("name", list(CURVES))
def test_valid_whole_number_forms_are_accepted(name):
    s = _every(name)
    assert s.lr_at(np.int64(3), total_steps=np.int64(10)) == s.lr_at(3, total_steps=10) == s.lr_at(3, 10.0)
    assert s.preview(10.0).tolist() == s.preview(10).tolist()


def test_lr_at_none_total_still_allowed_where_no_end_is_needed():
    assert SGDR(max_lr=0.1, cycle_length=2).lr_at(0, total_steps=None) == 0.1
    refused(ValueError, lambda: WarmupCosine(max_lr=0.1).lr_at(0), "needs total_steps")
    refused(ValueError, lambda: SGDR(cycle_length=0.5, unit="fraction").cycle_at(3), "total_steps=None",
            "unit='fraction'")


def test_validation_costs_little():
    """The checks add microseconds, not milliseconds, to the public calls."""
    s = SGDR(max_lr=0.1, cycle_length=2)
    t0 = time.perf_counter()
    for k in range(2000):
        s.lr_at(k, steps_per_epoch=10)
    assert (time.perf_counter() - t0) / 2000 < 1e-3


# ---------------------------------------------------------------------- OneCycle on very short trainings
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_runs_any_length_within_its_bounds(n, three_phase):
    """Shorter than its phases (e.g. fast_dev_run): no refusal, the LR stays in [final, peak]."""
    s = OneCycle(max_lr=0.5, three_phase=three_phase, anneal="linear", unit="step")
    lrs = s.preview(n)
    assert len(lrs) == n and np.all(lrs > 0) and np.all(lrs <= 0.5 + 1e-15)
    assert lrs[-1] == pytest.approx(0.5 / 25 / 1e4)  # the last step uses the final LR, as in torch


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_one_cycle_short_trainings_equal_torch(n):
    """Where torch's OneCycleLR runs (no zero-length phase), the values are torch's."""
    import torch
    from torch.optim import lr_scheduler as tl

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    sched = tl.OneCycleLR(opt, max_lr=0.5, total_steps=n, pct_start=0.3)
    ref = []
    for _ in range(n):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        if len(ref) < n:
            sched.step()
    np.testing.assert_allclose(OneCycle(max_lr=0.5, unit="step").preview(n), ref, rtol=1e-12)


def test_step_decay_step_size_zero_division_cannot_happen():
    refused(ValueError, lambda: StepDecay(step_size=0), "step_size=0")


# ---------------------------------------------------------------------- the own arguments of issue 18's schedules
@pytest.mark.parametrize("name,kw,exc,words", [
    ("WarmupStableDecay", {"decay": 1.5}, ValueError, "decay=1.5 is not allowed"),
    ("WarmupStableDecay", {"decay": -0.1}, ValueError, "decay=-0.1"),
    ("WarmupStableDecay", {"decay": "0.2"}, TypeError, "decay='0.2'"),
    ("WarmupStableDecay", {"decay_shape": "sqrt"}, ValueError, "decay_shape='sqrt'"),
    ("PolynomialDecay", {"power": 0}, ValueError, "power=0"),
    ("PolynomialDecay", {"power": float("inf")}, ValueError, "power=inf"),
    ("PolynomialDecay", {"power": True}, TypeError, "power=True"),
    ("InverseSqrt", {"timescale": 0}, ValueError, "timescale=0"),
    ("InverseSqrt", {"timescale": None, "warmup": 0}, ValueError, "timescale=None is not allowed with warmup=0"),
    ("InverseSqrt", {"timescale": 2, "unit": "fraction"}, ValueError, "timescale=2.0 is not allowed with unit='fraction'"),
    ("ScheduleFree", {"replace_optimizer": 1}, TypeError, "replace_optimizer=1"),
])
def test_own_arguments_of_the_new_schedules_are_refused_in_one_line(name, kw, exc, words):
    import lr_plugins

    with pytest.raises(exc) as info:
        getattr(lr_plugins, name)(**kw)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_wsd_refuses_a_warmup_that_runs_into_the_decay():
    s = CURVES["WarmupStableDecay"](max_lr=1.0, warmup=0.9, decay=0.2, unit="fraction")
    refused(ValueError, lambda: s.preview(100), "warmup=0.9 (fractions) is not allowed with decay=0.2",
            "before the decay starts")
