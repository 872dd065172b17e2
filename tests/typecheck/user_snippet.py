"""A typed user of lr-plugins: what a project's own code looks like, checked by mypy in CI.

`tests/typecheck/test_typecheck.py` runs mypy on this file (it must pass) and on copies with a
mistake in them (they must fail), so the public names stay visible, typed, to type checkers.
This file is also importable and runs in a fraction of a second.
"""

from __future__ import annotations

import numpy as np
from typing_extensions import assert_type  # typing.assert_type from Python 3.11 on

import lr_plugins
from lr_plugins import (
    SGDR,
    Constant,
    CyclicLR,
    ExponentialDecay,
    InverseTimeDecay,
    LRFinder,
    OneCycle,
    ScheduleCallback,
    SnapshotEnsemble,
    StepDecay,
    WarmupCosine,
    find_lr,
)


def schedules() -> list[ScheduleCallback]:
    """One of every schedule, as a user's config code would build them."""
    return [
        WarmupCosine(max_lr=0.1, warmup=2, hold=1),
        SGDR(max_lr=0.1, min_lr=1e-4, cycle_length=2, cycle_mult=1.5, cycle_decay=0.8),
        SGDR(cycle_length=None, replace_schedulers=True, log_lr=False),  # T_0: a quarter of training
        CyclicLR(max_lr=0.1, min_lr=0.025, step_size=2, mode="triangular2"),
        OneCycle(max_lr=0.1, pct_start=0.25, three_phase=True),
        StepDecay(max_lr=0.1, milestones=[15, 22], gamma=0.1),
        ExponentialDecay(max_lr=0.1, rate=0.1, min_lr=1e-3),
        InverseTimeDecay(max_lr=0.1, rate=0.5, staircase=True),
        Constant(max_lr=0.1, warmup=0.5),
    ]


def curve(total_steps: int = 70) -> np.ndarray:
    """The LR of every optimizer step of an SGDR run, without a Trainer."""
    s = SGDR(max_lr=0.1, cycle_length=2, cycle_mult=2)
    assert_type(s, SGDR)  # fails under mypy if the public names were Any
    first = s.lr_at(25, steps_per_epoch=10)
    assert_type(first, float)
    assert first > 0.0
    ends: list[int] = list(s.cycle_ends(total_steps, steps_per_epoch=10))
    assert ends == [19, 59]
    return s.preview(total_steps, steps_per_epoch=10)


def callbacks() -> list[object]:
    """The other two callbacks; ``find_lr`` is the functional form of the finder."""
    assert callable(find_lr)
    finder = LRFinder(min_lr=1e-6, max_lr=1.0, num_steps=50)
    assert_type(finder.num_steps, int)
    return [finder, SnapshotEnsemble(keep=3)]


version: str = lr_plugins.__version__

if __name__ == "__main__":
    print(len(schedules()), curve().shape, len(callbacks()), version)
