"""The schedules of issue 18 against the peers' own implementations, to 1e-12 relative.

Each peer is stepped once per optimizer step for >= 1000 steps (``transformers``' LambdaLR
schedules, torch's ``PolynomialLR``), and its LR compared with ``preview`` of ours. transformers is
in the ``test`` extra; without it those tests skip. Values that reach exactly 0 must be 0 in
both (``atol=0``).
"""

from __future__ import annotations

import math

import pytest
import torch
from test_schedules_parity import close, torch_trace
from torch.optim import lr_scheduler as tl

from lr_plugins import InverseSqrt, PolynomialDecay, WarmupStableDecay


def hf():
    return pytest.importorskip("transformers.optimization", reason="transformers is in the test extra")


# ---------------------------------------------------------------------- warmup-stable-decay
@pytest.mark.parametrize("shape", ["1-sqrt", "linear", "cosine"])
@pytest.mark.parametrize("n,warmup,decay_steps,ratio", [(1000, 50, 200, 0.0), (2400, 100, 600, 0.1), (1000, 0, 1000, 0.01)])
def test_wsd_equals_transformers_get_wsd_schedule(shape, n, warmup, decay_steps, ratio):
    peak = 0.3
    ref, _ = torch_trace(lambda opt: hf().get_wsd_schedule(
        opt, num_warmup_steps=warmup, num_decay_steps=decay_steps, num_training_steps=n, decay_type=shape,
        min_lr_ratio=ratio), n + 5, lr=peak)  # 5 steps past the end: the floor holds
    ours = WarmupStableDecay(max_lr=peak, min_lr=ratio * peak, warmup_start_lr=ratio * peak, warmup=warmup,
                             decay=decay_steps / n, decay_shape=shape, unit="step")
    got = [ours.lr_at(s, total_steps=n) for s in range(n + 5)]
    close(got, ref)
    close(ours.preview(n), ref[:n])
    if warmup + decay_steps < n:  # the stable phase is the peak itself
        assert ref[warmup + 1] == peak and got[n - decay_steps - 1] == peak


# ---------------------------------------------------------------------- linear and polynomial decay
@pytest.mark.parametrize("n,warmup", [(1000, 0), (1500, 100), (3000, 7)])
def test_linear_preset_shape_equals_transformers_get_linear_schedule_with_warmup(n, warmup):
    ref, _ = torch_trace(lambda opt: hf().get_linear_schedule_with_warmup(opt, warmup, n), n + 3, lr=0.2)
    ours = PolynomialDecay(max_lr=0.2, warmup=warmup, power=1.0, unit="step")
    close([ours.lr_at(s, total_steps=n) for s in range(n + 3)], ref)  # 0 at the end and after it
    assert ref[-1] == 0.0


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5, 0.9])
@pytest.mark.parametrize("n,warmup,lr_end", [(1000, 50, 1e-7), (2000, 0, 1e-3), (1200, 300, 0.0)])
def test_polynomial_equals_transformers_get_polynomial_decay_schedule_with_warmup(power, n, warmup, lr_end):
    ref, _ = torch_trace(lambda opt: hf().get_polynomial_decay_schedule_with_warmup(
        opt, warmup, n, lr_end=lr_end, power=power), n + 3, lr=0.1)
    ours = PolynomialDecay(max_lr=0.1, min_lr=lr_end, warmup=warmup, power=power, unit="step")
    close([ours.lr_at(s, total_steps=n) for s in range(n + 3)], ref)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5, 0.9])
@pytest.mark.parametrize("n", [1000, 4000])
def test_polynomial_equals_torch_polynomial_lr(power, n):
    """torch's recursive form (stepped) and its closed form, over the whole run and past its end."""
    ref, _ = torch_trace(lambda opt: tl.PolynomialLR(opt, total_iters=n, power=power), n + 3, lr=0.5)
    ours = PolynomialDecay(max_lr=0.5, power=power, unit="step")
    got = [ours.lr_at(s, total_steps=n) for s in range(n + 3)]
    close(got[:n], ref[:n], rtol=1e-11 if power != 1.0 else 1e-12)  # recursion: products of n ratios
    assert got[n:] == [0.0] * 3 and list(ref[n:]) == [0.0] * 3
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    closed = tl.PolynomialLR(opt, total_iters=n, power=power)
    for s in range(n):
        closed.last_epoch = s
        close(got[s], closed._get_closed_form_lr()[0])


# ---------------------------------------------------------------------- inverse square root
@pytest.mark.parametrize("n,warmup,timescale", [(1000, 100, None), (5000, 400, None), (2000, 10, 1000), (1000, 1, 3)])
def test_inverse_sqrt_equals_transformers_get_inverse_sqrt_schedule(n, warmup, timescale):
    ref, _ = torch_trace(lambda opt: hf().get_inverse_sqrt_schedule(opt, warmup, timescale=timescale), n, lr=0.05)
    ours = InverseSqrt(max_lr=0.05, warmup=warmup, timescale=timescale, unit="step")
    close(ours.preview(n), ref)
    close(ours.lr_at(10**9), 0.05 * math.sqrt((timescale or warmup) / (10**9 - warmup + (timescale or warmup))))


def test_inverse_sqrt_holds_its_floor():
    s = InverseSqrt(max_lr=1.0, min_lr=0.1, warmup=1, unit="step")
    assert s.lr_at(50) == pytest.approx(50**-0.5)  # sqrt(1 / (49 + 1))
    assert s.lr_at(101) == 0.1 and s.lr_at(10**6) == 0.1  # sqrt(1 / 100) reached at step 100
