"""Argument checks shared by the optimizers; each error names argument and value."""

import numbers


def learning_rate(value):
    """Floats and ints become a float; schedules and callables pass through."""
    if isinstance(value, bool):
        raise ValueError(f"`learning_rate` must be a number. Received: {value!r}")
    if isinstance(value, numbers.Real):
        if value < 0:
            raise ValueError(f"`learning_rate` must be >= 0. Received: learning_rate={value}")
        return float(value)
    return value


def non_negative(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
    return float(value)


def positive(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a number > 0. Received: {name}={value!r}")
    return float(value)


def unit_interval(name, value):
    """A decay rate in [0, 1)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value}")
    return float(value)


def bounds(name, value):
    """None, or a pair (low, high) of non-negative numbers or None, low <= high."""
    if value is None:
        return None
    if isinstance(value, str) or len(value) != 2:
        raise ValueError(f"`{name}` must be None or a pair (low, high). Received: {name}={value!r}")
    low, high = value
    for end in (low, high):
        if end is not None and (
            not isinstance(end, numbers.Real) or isinstance(end, bool) or end < 0
        ):
            raise ValueError(
                f"`{name}` ends must be numbers >= 0 or None. Received: {name}={value!r}"
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
