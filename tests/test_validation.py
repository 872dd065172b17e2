"""The validation table: every invalid argument fails at construction, naming itself.

Each error must be a ValueError or TypeError whose message names the argument, repeats the value
it got and says what is allowed. Trainer-dependent checks (too-long warmup, infinite training)
are in tests/test_callback.py, where they fail at fit start before any step.
"""

from __future__ import annotations

import math

import pytest

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
from lr_plugins._validation import check_bool, check_choice, check_int, check_real

#: The smallest valid arguments of every public schedule.
REQUIRED = {
    WarmupCosine: {},
    SGDR: {"cycle_length": 2},
    CyclicLR: {"step_size": 2},
    OneCycle: {},
    StepDecay: {"step_size": 2},
    ExponentialDecay: {"rate": 0.1},
    InverseTimeDecay: {"rate": 0.1},
    Constant: {},
}

# (argument, bad value, exception, words the message must contain)
COMMON_BAD = [
    ("max_lr", 0.0, ValueError, "(0.0, inf)"),
    ("max_lr", -0.1, ValueError, "(0.0, inf)"),
    ("max_lr", math.nan, ValueError, "finite"),
    ("max_lr", math.inf, ValueError, "finite"),
    ("max_lr", "0.1", TypeError, "number"),
    ("max_lr", True, TypeError, "number"),
    ("min_lr", -1e-3, ValueError, "[0.0, inf)"),
    ("min_lr", math.nan, ValueError, "finite"),
    ("min_lr", None, TypeError, "number"),
    ("warmup", -1, ValueError, "[0.0, inf)"),
    ("warmup", "2", TypeError, "number"),
    ("warmup", False, TypeError, "number"),
    ("warmup_start_lr", -0.5, ValueError, "[0.0, inf)"),
    ("unit", "batch", ValueError, "'epoch', 'step'"),
    ("unit", None, ValueError, "'epoch', 'step'"),
]


def _cases():
    for cls, req in REQUIRED.items():
        for arg, value, exc, words in COMMON_BAD:
            if cls is CyclicLR and arg == "min_lr" and value is None:
                continue  # CyclicLR(min_lr=None): the floor is a quarter of the peak
            yield pytest.param(cls, {**req, "max_lr": 0.1, arg: value}, arg, value, exc, words,
                               id=f"{cls.__name__}-{arg}={value!r}")
    specific = [
        (WarmupCosine, {"hold": -1}, "hold", -1, ValueError, "[0.0, inf)"),
        (SGDR, {"cycle_length": 0}, "cycle_length", 0, ValueError, "[1e-06, inf)"),
        (SGDR, {"cycle_length": -3}, "cycle_length", -3, ValueError, "[1e-06, inf)"),
        (SGDR, {"cycle_length": "10"}, "cycle_length", "10", TypeError, "number"),
        (SGDR, {"cycle_length": 2, "cycle_mult": 0.5}, "cycle_mult", 0.5, ValueError, "[1.0, inf)"),
        (SGDR, {"cycle_length": 2, "cycle_mult": True}, "cycle_mult", True, TypeError, "number"),
        (SGDR, {"cycle_length": 2, "cycle_decay": 0}, "cycle_decay", 0, ValueError, "(0.0, 1.0]"),
        (SGDR, {"cycle_length": 2, "cycle_decay": 1.5}, "cycle_decay", 1.5, ValueError, "(0.0, 1.0]"),
        (CyclicLR, {"step_size": 0}, "step_size", 0, ValueError, "[1e-06, inf)"),
        (CyclicLR, {"step_size": 2, "mode": "triangle"}, "mode", "triangle", ValueError, "'exp_range'"),
        (CyclicLR, {"step_size": 2, "gamma": 0}, "gamma", 0, ValueError, "(0.0, 1.0]"),
        (CyclicLR, {"step_size": 2, "gamma": -0.5}, "gamma", -0.5, ValueError, "(0.0, 1.0]"),
        (CyclicLR, {"step_size": 2, "cycle_momentum": "yes"}, "cycle_momentum", "yes", TypeError, "True or False"),
        (CyclicLR, {"step_size": 2, "base_momentum": 1.0}, "base_momentum", 1.0, ValueError, "[0.0, 1.0)"),
        (CyclicLR, {"step_size": 2, "max_momentum": -0.1}, "max_momentum", -0.1, ValueError, "[0.0, 1.0)"),
        (CyclicLR, {"step_size": 2, "base_momentum": 0.96}, "base_momentum", 0.96, ValueError, "max_momentum"),
        (OneCycle, {"pct_start": 0}, "pct_start", 0, ValueError, "(0.0, 1.0)"),
        (OneCycle, {"pct_start": 1.0}, "pct_start", 1.0, ValueError, "(0.0, 1.0)"),
        (OneCycle, {"pct_start": math.nan}, "pct_start", math.nan, ValueError, "(0.0, 1.0)"),
        (OneCycle, {"div_factor": 0}, "div_factor", 0, ValueError, "(0.0, inf)"),
        (OneCycle, {"final_div_factor": -1}, "final_div_factor", -1, ValueError, "(0.0, inf)"),
        (OneCycle, {"anneal": "cosine"}, "anneal", "cosine", ValueError, "'cos', 'linear'"),
        (OneCycle, {"three_phase": 1}, "three_phase", 1, TypeError, "True or False"),
        (StepDecay, {"step_size": 2, "gamma": 0}, "gamma", 0, ValueError, "(0.0, 1.0]"),
        (StepDecay, {"step_size": 2, "gamma": -2}, "gamma", -2, ValueError, "(0.0, 1.0]"),
        (StepDecay, {"step_size": 0}, "step_size", 0, ValueError, "(0.0, inf)"),
        (StepDecay, {}, "step_size", None, ValueError, "exactly one"),
        (StepDecay, {"step_size": 2, "milestones": [3]}, "milestones", [3.0], ValueError, "exactly one"),
        (StepDecay, {"milestones": [5, 3]}, "milestones", [5.0, 3.0], ValueError, "increasing"),
        (StepDecay, {"milestones": "5,3"}, "milestones", "5,3", TypeError, "list"),
        (StepDecay, {"milestones": [2, "x"]}, "milestones[1]", "x", TypeError, "number"),
        (ExponentialDecay, {"rate": -0.1}, "rate", -0.1, ValueError, "[0.0, inf)"),
        (ExponentialDecay, {"rate": 0.1, "staircase": "no"}, "staircase", "no", TypeError, "True or False"),
        (InverseTimeDecay, {"rate": math.nan}, "rate", math.nan, ValueError, "finite"),
    ]
    for cls, kwargs, arg, value, exc, words in specific:
        yield pytest.param(cls, {"max_lr": 0.1, **kwargs}, arg, value, exc, words, id=f"{cls.__name__}-{arg}={value!r}")


@pytest.mark.parametrize("cls,kwargs,arg,value,exc,words", list(_cases()))
def test_invalid_argument_is_refused_with_a_message(cls, kwargs, arg, value, exc, words):
    with pytest.raises(exc) as info:
        cls(**kwargs)
    msg = str(info.value)
    assert f"{arg}=" in msg
    assert repr(value) in msg or repr(float(value) if isinstance(value, int) else value) in msg
    assert words in msg


@pytest.mark.parametrize("cls", list(REQUIRED))
def test_min_lr_and_warmup_start_above_max_lr_refused(cls):
    for arg in ("min_lr", "warmup_start_lr"):
        with pytest.raises(ValueError, match=rf"{arg}=0.5 is not allowed: it must be <= the peak LR \(max_lr=0.1\)"):
            cls(**REQUIRED[cls], max_lr=0.1, **{arg: 0.5})


@pytest.mark.parametrize("cls", list(REQUIRED))
def test_positional_arguments_refused(cls):
    with pytest.raises(TypeError):
        cls(0.1)


@pytest.mark.parametrize("cls", list(REQUIRED))
def test_valid_defaults_construct(cls):
    s = cls(**REQUIRED[cls])
    assert s.max_lr is None and s.unit == "epoch"


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (WarmupCosine, {"warmup": 20}, r"warmup=20.0 \(steps\) is not allowed: it is longer than training"),
        (WarmupCosine, {"warmup": 4, "hold": 6}, r"warmup=4.0 \+ hold=6.0 \(steps\) is not allowed"),
        (OneCycle, {"warmup": 10}, r"warmup=10.0 \(steps\) is not allowed: it leaves 0 optimizer steps"),
        (SGDR, {"cycle_length": 2, "warmup": 11}, r"warmup=11.0 \(steps\) is not allowed"),
    ],
)
def test_length_checks_in_lr_at_and_preview(cls, kwargs, match):
    s = cls(max_lr=0.1, unit="step", **kwargs)
    with pytest.raises(ValueError, match=match):
        s.preview(10)
    with pytest.raises(ValueError, match=match):
        s.lr_at(0, total_steps=10)


@pytest.mark.parametrize("cls", [WarmupCosine, OneCycle])
def test_schedules_that_need_the_total_say_so(cls):
    with pytest.raises(ValueError, match="needs total_steps"):
        cls(max_lr=0.1).lr_at(3)


def test_checkers_directly():
    assert check_real("x", 2, low=0) == 2.0
    with pytest.raises(TypeError, match=r"x=array"):
        import numpy as np

        check_real("x", np.array([1.0]))
    with pytest.raises(ValueError, match=r"k=0 is not allowed: k must be an integer >= 1"):
        check_int("k", 0, low=1)
    with pytest.raises(TypeError, match=r"k=2.0 is not allowed"):
        check_int("k", 2.0, low=1)
    with pytest.raises(TypeError, match=r"k=True"):
        check_int("k", True)
    assert check_int("k", None, optional=True) is None
    with pytest.raises(ValueError, match=r"u='x' is not allowed: u must be one of 'a', 'b'"):
        check_choice("u", "x", ("a", "b"))
    with pytest.raises(TypeError, match=r"b=0 is not allowed: b must be True or False"):
        check_bool("b", 0)


def test_one_cycle_three_phase_floor_above_initial_lr_refused():
    with pytest.raises(ValueError, match=r"min_lr=0.01 is not allowed with three_phase=True: it must be <= the initial LR"):
        OneCycle(max_lr=0.1, min_lr=0.01, div_factor=25, three_phase=True)
    OneCycle(max_lr=0.1, min_lr=0.01, div_factor=25)  # two phases: the LR still only falls after the peak
    OneCycle(max_lr=0.1, min_lr=0.001, div_factor=25, three_phase=True)
