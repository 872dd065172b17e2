"""The schedules of issue 18 against the peers' own implementations, to 1e-12 relative.

Each peer is stepped once per optimizer step for >= 1000 steps (``transformers``' LambdaLR
schedules, torch's ``PolynomialLR``), and its LR compared with ``preview`` of ours. transformers is
in the ``test`` extra; without it those tests skip. Values that reach exactly 0 must be 0 in
both (``atol=0``).
"""

from __future__ import annotations

import pytest
from test_schedules_parity import close, torch_trace

from lr_plugins import WarmupStableDecay


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
