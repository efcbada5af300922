"""What every command of the project shares: TensorFlow's native start-up
lines silenced, and errors as one line with an exit status.

    2    a configuration that cannot run (a flag, a gin setting, a value), or
         an install that lacks a package it needs (`trainers.stack.require`)
    1    data or a runtime failure (a corrupt file, a full disk, a failed step)
    130  interrupted by Ctrl-C before training started (during training a
         Ctrl-C is a preemption: a checkpoint, then 130, see `preemption`)

`LAMB_TF_VERBOSE=1` shows the full traceback and TensorFlow's start-up lines.
"""

import contextlib
import importlib.util
import os
import sys

from trainers import stack

VERBOSE = "LAMB_TF_VERBOSE"
CONFIG_STATUS = 2
RUNTIME_STATUS = 1
INTERRUPTED_STATUS = 130
_name = None  # the running command's, set by `run`


def verbose():
    return os.environ.get(VERBOSE, "") not in ("", "0")


def quiet_tensorflow():
    """Imports TensorFlow with its native start-up lines (CUDA probing, oneDNN
    notices, absl's pre-init warning) silenced. These are written by C++
    straight to file descriptor 2 while the library loads, before any log
    level applies, so that descriptor points at /dev/null for the import.
    The variable set here is inherited by spawned worker processes."""
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    with _native_stderr_silenced():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def _native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def run(main, name=None):
    """`absl.app.run(main)`, with flag errors, the project's errors, gin's
    and TensorFlow's file errors as one line on stderr, prefixed with the
    command's `name`, and an exit status."""
    from absl import app

    global _name
    name = _name = name or os.path.basename(sys.argv[0])
    app.run(_one_line_errors(main, name), flags_parser=lambda argv: _parse_flags(argv, name))


def parse_gin(files, bindings):
    """Gin files (each checked to exist) and bindings, errors as ConfigError."""
    import gin

    from trainers.bert import settings
    from trainers.bert.errors import ConfigError

    for path in files:
        if not os.path.exists(path):
            raise ConfigError(f"--gin_file={path} does not exist")
    try:
        gin.parse_config_files_and_bindings(files, None, finalize_config=False)
        in_files = settings.gin_bound()
        gin.parse_config_files_and_bindings(None, bindings)
    except (ValueError, SyntaxError, ImportError) as error:
        raise ConfigError(f"gin: {error}{_other_command(error)}") from None
    settings.typed_on_the_command_line(settings.gin_bound() - in_files)


# The job each command's gin files configure, and the command.
_JOBS = {
    "train": "python -m trainers.bert.main",
    "finetune": "python -m trainers.bert.finetune.main",
}


def _other_command(error):
    """For a config of the other job (`finetune.*` given to pretraining):
    the command that runs it."""
    for job, command in _JOBS.items():
        if f"No configurable matching '{job}'" in str(error):
            return f" (a config of the {job} job: run it with {command})"
    return ""


def fail(name, message, status, traceback=True):
    """Prints `message` as the command's one error line and exits."""
    hint = f" ({VERBOSE}=1 for the traceback)" if traceback and not verbose() else ""
    print(f"{name}: error: {_one_line(message)}{hint}", file=sys.stderr, flush=True)
    sys.exit(status)


def abort(message, status):
    """`fail` from any thread, when the main one is stuck in a native call:
    prints the error line and ends the process at once."""
    name = _name or os.path.basename(sys.argv[0])
    print(f"{name}: error: {_one_line(message)}", file=sys.stderr, flush=True)
    os._exit(status)


def _parse_flags(argv, name):
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        fail(name, f"{error}; --helpfull lists the flags", CONFIG_STATUS, traceback=False)


def _one_line_errors(main, name):
    def wrapped(argv):
        try:
            return main(argv)
        except Exception as error:
            status = _status(error)
            if status is None or verbose():
                raise
            fail(name, _message(error), status, traceback=not _checked(error))
        except KeyboardInterrupt:
            if verbose():
                raise
            fail(name, "interrupted", INTERRUPTED_STATUS, traceback=False)

    return wrapped


def _checked(error):
    """An error of the project's own checks: its line says all a traceback
    would (no hint to ask for one)."""
    from absl import app

    from trainers.bert.errors import ConfigError, DataError

    return isinstance(error, (ConfigError, DataError, app.UsageError, stack.StackError))


def _status(error):
    """The exit status for errors a user can act on; None for the rest
    (a bug: its traceback is shown)."""
    from absl import app

    from trainers.bert.errors import ConfigError, DataError, TrainingError

    if isinstance(error, (ConfigError, app.UsageError, stack.StackError)):
        return CONFIG_STATUS
    if isinstance(error, (DataError, TrainingError, OSError)):
        return RUNTIME_STATUS
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if isinstance(error, tf.errors.OpError):
            return RUNTIME_STATUS
    return None


def _message(error):
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        from trainers.bert.errors import tensorflow_message

        if isinstance(error, tf.errors.OpError):
            return tensorflow_message(error)
    return str(error) or type(error).__name__


def _one_line(message):
    """Gin adds "In call to configurable ..." lines to errors raised inside a
    configurable: the message before them is what names the problem."""
    lines = [line.strip() for line in str(message).splitlines()]
    kept = [line for line in lines if line and not line.startswith("In call to configurable")]
    return " ".join(kept)
