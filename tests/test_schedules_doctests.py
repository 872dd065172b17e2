"""The docstring examples of the schedule modules are true (run as part of the default suite)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lr_plugins._validation",
    "lr_plugins.schedules",
    "lr_plugins.schedules.base",
    "lr_plugins.schedules.cosine",
    "lr_plugins.schedules.sgdr",
    "lr_plugins.schedules.cyclic",
    "lr_plugins.schedules.decay",
    "lr_plugins.callback",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
