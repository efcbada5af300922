"""Checks of the trainer's settings; each error names the setting and value.

Values arrive through gin as whatever a config file holds (strings, NaN,
floats for counts), so every count, rate and switch is checked before any
compute: a NaN clip norm or a fractional step count would otherwise fail
minutes later with a raw error, or train to NaN without a word."""

import math
import numbers

from trainers.bert.errors import ConfigError


def integer(name, value, minimum=1, optional=False):
    """A whole number >= `minimum` (4.0 is 4; None only if `optional`)."""
    if value is None and optional:
        return None
    whole = not isinstance(value, bool) and (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and math.isfinite(value) and value == int(value))
    )
    if not whole or value < minimum:
        allowed = " (or None)" if optional else ""
        raise ConfigError(f"{name} must be an integer >= {minimum}{allowed}, got {value!r}")
    return int(value)


def number(name, value, low=None, high=None, above=None, optional=False):
    """A finite real number in [low, high], or > `above`."""
    if value is None and optional:
        return None
    finite = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
    )
    if (
        not finite
        or (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        rule = " and ".join(
            text
            for text, bound in ((f">= {low}", low), (f"<= {high}", high), (f"> {above}", above))
            if bound is not None
        )
        allowed = " (or None)" if optional else ""
        raise ConfigError(f"{name} must be a finite number {rule}{allowed}, got {value!r}")
    return float(value)


def boolean(name, value):
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return value
