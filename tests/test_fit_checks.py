"""Issue 17 item 11 (app): a training that would have no batch is one line before any step, not
Lightning's traceback, and ``limit_train_batches=0`` is not called "infinite"."""

from __future__ import annotations

import pytest

from lr_plugins.app.build import ConfigError, compose_config
from lr_plugins.app.validate import validate

DIGITS = ["data=digits", "model=mlp"]


def test_a_fraction_below_one_batch_is_one_line_naming_limit_train_batches():
    with pytest.raises(ConfigError) as info:
        validate(compose_config([*DIGITS, "trainer.limit_train_batches=0.01"]))
    text = str(info.value)
    assert "\n" not in text and "limit_train_batches" in text and "0.01" in text and "Try at least" in text


@pytest.mark.parametrize("value", ["0", "0.0"])
def test_zero_train_batches_is_refused_as_such_not_as_infinite_training(value):
    with pytest.raises(ConfigError) as info:
        validate(compose_config([*DIGITS, f"trainer.limit_train_batches={value}"]))
    text = str(info.value)
    assert text.startswith(f"trainer.limit_train_batches={value} is not allowed: it leaves 0 training batches")
    assert "infinite" not in text
