"""Argument checks shared by every public class.

Each check raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) with a message that
names the argument, the value it got and what is allowed, so that bad input fails at
construction, before any training step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, NoReturn, overload

__all__ = ["check_real", "check_int", "check_choice", "check_bool"]


def _fail(name: str, value: Any, allowed: str, exc: type[Exception] = ValueError) -> NoReturn:
    raise exc(f"{name}={value!r} is not allowed: {name} must be {allowed}.")


# The overloads tell type checkers that a check without ``optional=True`` never returns None.
@overload
def check_real(
    name: str, value: Any, *, low: float | None = ..., high: float | None = ..., low_open: bool = ...,
    high_open: bool = ..., optional: Literal[False] = ...,
) -> float: ...
@overload
def check_real(
    name: str, value: Any, *, low: float | None = ..., high: float | None = ..., low_open: bool = ...,
    high_open: bool = ..., optional: bool = ...,
) -> float | None: ...
def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> float | None:
    """Return ``value`` as a float after checking that it is a finite real number in range.

    Args:
        name: The argument's name, used in the error message.
        value: The value to check. ``bool`` is refused even though it is an ``int``.
        low: Lower bound, or ``None`` for none.
        high: Upper bound, or ``None`` for none.
        low_open: Whether the lower bound itself is excluded.
        high_open: Whether the upper bound itself is excluded.
        optional: Whether ``None`` is accepted (and returned as is).

    Example:
        >>> check_real("gamma", 0.5, low=0.0, low_open=True)
        0.5
    """
    if value is None and optional:
        return None
    lo = "(" if low_open or low is None else "["  # an open end at -inf/inf: infinity is not finite
    hi = ")" if high_open or high is None else "]"
    allowed = f"a finite number in {lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if optional:
        allowed += " or None"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or hasattr(value, "shape"):
        _fail(name, value, allowed, TypeError)
    value = float(value)
    if not math.isfinite(value):
        _fail(name, value, allowed)
    if low is not None and (value < low or (low_open and value == low)):
        _fail(name, value, allowed)
    if high is not None and (value > high or (high_open and value == high)):
        _fail(name, value, allowed)
    return value


@overload
def check_int(name: str, value: Any, *, low: int | None = ..., optional: Literal[False] = ...) -> int: ...
@overload
def check_int(name: str, value: Any, *, low: int | None = ..., optional: bool = ...) -> int | None: ...
def check_int(name: str, value: Any, *, low: int | None = None, optional: bool = False) -> int | None:
    """Return ``value`` after checking that it is an ``int`` (not a bool) of at least ``low``.

    Example:
        >>> check_int("keep", 3, low=1)
        3
    """
    if value is None and optional:
        return None
    allowed = "an integer" + (f" >= {low}" if low is not None else "") + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, value, allowed, TypeError)
    if low is not None and value < low:
        _fail(name, value, allowed)
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` after checking that it is one of ``choices``.

    Example:
        >>> check_choice("unit", "step", ("epoch", "step"))
        'step'
    """
    choices = tuple(choices)
    if value not in choices:
        _fail(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` after checking that it is a ``bool``.

    Example:
        >>> check_bool("apply", True)
        True
    """
    if not isinstance(value, bool):
        _fail(name, value, "True or False", TypeError)
    return value
