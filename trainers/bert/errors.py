"""The trainer's own errors; each message names the setting, file or step."""

import json
import re


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the setting."""


class DataError(ValueError):
    """Input data that cannot be trained on; the message names the problem."""


class TrainingError(RuntimeError):
    """Training cannot go on; the message names phase and step."""


def resumes_from(checkpoint):
    """Where a restart resumes, for messages: the newest checkpoint (anything
    with `path` and `step`), or None."""
    return (
        f"{checkpoint.path} (step {checkpoint.step})" if checkpoint else "the start (no checkpoint)"
    )


def tensorflow_message(error):
    """A TensorFlow error's message in one line, without the graph
    decorations ("{{function_node ...}}", "[Op:...]", node traces) that
    name no file. A "Graph execution error" ends with what went wrong."""
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("[[", "File ", "Detected at"))]
    if not lines:
        return type(error).__name__
    message = lines[-1] if lines[0].startswith("Graph execution error") else lines[0]
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:.*$", "", message)


def read_json(path, what, error=ValueError):
    """A JSON file's content; a missing, unreadable or malformed file raises
    `error` naming `what`, the file and, for bad JSON, the line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise error(f"{what} {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise error(
            f"{what} {path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    except UnicodeDecodeError as e:
        raise error(f"{what} {path}: not UTF-8 text ({e.reason})") from None
