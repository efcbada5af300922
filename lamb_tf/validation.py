"""Argument checks shared by the optimizers and schedules; each error names
argument and value. NaN and infinities are refused everywhere: either would
train to NaN weights without a word."""

import math
import numbers


def _finite_real(value):
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
    )


def number(name, value, rule="a finite number"):
    """A finite real number (not a bool) as a float."""
    if not _finite_real(value):
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")
    return float(value)


def learning_rate(value):
    """Floats and ints become a float; schedules and callables pass through."""
    if isinstance(value, numbers.Real):  # bools too: refused by `number`
        value = number("learning_rate", value, "a finite number >= 0")
        if value < 0:
            raise ValueError(f"`learning_rate` must be >= 0. Received: learning_rate={value}")
    return value


def non_negative(name, value):
    value = number(name, value, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
    return value


def positive(name, value):
    value = number(name, value, "a finite number > 0")
    if value <= 0:
        raise ValueError(f"`{name}` must be a number > 0. Received: {name}={value!r}")
    return value


def unit_interval(name, value):
    """A decay rate in [0, 1)."""
    value = number(name, value, "a number in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value}")
    return value


def bounds(name, value):
    """None, or a pair (low, high) of finite numbers >= 0 or None (no bound
    on that side), low <= high."""
    if value is None:
        return None
    if isinstance(value, str) or len(value) != 2:
        raise ValueError(f"`{name}` must be None or a pair (low, high). Received: {name}={value!r}")
    low, high = value
    for end in (low, high):
        if end is not None and (not _finite_real(end) or end < 0):
            raise ValueError(
                f"`{name}` ends must be finite numbers >= 0 or None. Received: {name}={value!r}"
            )
    if low is not None and high is not None and low > high:
        raise ValueError(
            f"`{name}` is inverted: low {low} > high {high}. Received: {name}={value!r}"
        )
    if low is None and high is None:
        return None
    return (
        None if low is None else float(low),
        None if high is None else float(high),
    )
