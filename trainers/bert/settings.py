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


# The (scope, configurable) pairs first bound by --gin_param, not a file.
_TYPED = set()


def gin_bound():
    """The (scope, configurable) pairs gin holds bindings of."""
    from gin import config

    return set(config._CONFIG)


def typed_on_the_command_line(pairs):
    _TYPED.clear()
    _TYPED.update(pairs)


def check_gin_bindings_used():
    """Every gin binding was read by what the run made; returns notes on the
    rest. Gin ignores unread bindings without a word. A binding typed on the
    command line (`--gin_param`) in a scope the run never enters is a
    misspelling (`phse2/Phase.steps` would leave phase 2 at its defaults):
    refused. Unread bindings of a config file (its phases after
    `train.phases` was replaced, its `lamb_tf.LAMB.*` after the optimizer
    was) are said in a note. Call it once the job's settings are made: gin
    has then made the phases and the optimizer.

    A binding of scope `s` applies to calls in `s` and in the scopes inside
    it. Gin has no public view of its bindings: these are its two
    registries, as `gin.config_str()` and `gin.operative_config_str()` read
    them."""
    from gin import config

    made = list(config._OPERATIVE_CONFIG)
    misspelt, notes = [], []
    for scope, selector in config._CONFIG:
        scopes = sorted({used for used, chosen in made if chosen == selector})
        if any(not scope or f"{used}/".startswith(f"{scope}/") for used in scopes):
            continue
        bound = config._CONFIG[scope, selector]
        names = ", ".join(_binding_name(scope, selector, p) for p in bound)
        if selector == "gin.macro":
            notes.append(f"gin: the macro {scope} is never used")
        elif scopes:
            made_in = ", ".join(repr(used) for used in scopes)
            problem = f"no {_short(selector)} is made in scope {scope!r}, only in {made_in}"
            if (scope, selector) in _TYPED:
                misspelt.append(f"{names}: {problem}")
            else:
                notes.append(f"gin: {names} not read: {problem}")
        else:
            notes.append(f"gin: {names} not read: this run makes no {_short(selector)}")
    if misspelt:
        raise ConfigError(
            f"gin: {'; '.join(misspelt)} (a misspelt scope, or one this run does not use: "
            "nothing would read these settings)"
        )
    return notes


def _short(selector):
    """A selector as configs write it: `Phase`, `lamb_tf.LAMB`."""
    return selector.rsplit(".", 1)[-1] if selector.startswith("trainers.") else selector


def _binding_name(scope, selector, parameter):
    return f"{scope + '/' if scope else ''}{_short(selector)}.{parameter}"
