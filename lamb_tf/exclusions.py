"""Which variables a rule applies to: regular expressions over variable paths."""

import re


def variable_path(variable):
    """The name patterns are matched against: Keras' full path, else the name."""
    return getattr(variable, "path", None) or variable.name


class PathPatterns:
    """A list of regular expressions; a variable matches if any pattern is
    found (`re.search`) anywhere in its full path, e.g. "layer_norm" matches
    `bert/transformer_layer_0/self_attention_layer_norm/gamma`.
    """

    def __init__(self, patterns, argument):
        if isinstance(patterns, str):
            raise ValueError(
                f"`{argument}` must be a list of regular expressions, not a "
                f"string. Received: {argument}={patterns!r}"
            )
        self.patterns = list(patterns or [])
        compiled = []
        for pattern in self.patterns:
            try:
                compiled.append(re.compile(pattern))
            except (re.error, TypeError) as error:
                raise ValueError(
                    f"`{argument}` contains an invalid regular expression "
                    f"{pattern!r}: {error}. Received: {argument}={self.patterns!r}"
                ) from None
        self._compiled = compiled

    def matches(self, variable):
        path = variable_path(variable)
        return any(p.search(path) for p in self._compiled)
