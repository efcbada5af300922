"""The trainer's own errors; each message names the setting, file or step."""


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the setting."""


class DataError(ValueError):
    """Input data that cannot be trained on; the message names the problem."""


class TrainingError(RuntimeError):
    """Training cannot go on; the message names phase and step."""
