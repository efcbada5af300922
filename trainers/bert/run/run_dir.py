"""The files of a run's `model_dir` that every program writes, and the
checks before it writes any."""

import contextlib
import os
import shutil

import tensorflow as tf

from trainers import atomic
from trainers.bert.errors import ConfigError


def check_optimizer(setting, optimizer):
    """The optimizer's arguments (from gin: `lamb_tf.LAMB.weight_decay = ...`)
    are checked when it is made: make one now, before any compute."""
    try:
        optimizer(learning_rate=1e-3)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{setting}: {error}") from None


def write_text(model_dir, name, text):
    """`text` as `model_dir/name`, atomically (a restart reads these)."""
    return atomic.write_text(os.path.join(model_dir, name), text)


def write_atomically(path, text):
    """`text` to `path` (also on gs://), its folder made if need be,
    atomically (trainers/atomic.py): a reader never finds it half written."""
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    return atomic.write_text(path, text)


def check_writable(model_dir):
    """`model_dir` can be written; a folder made for the probe is removed
    again, so a run refused before its first write leaves nothing behind."""
    made = "://" not in model_dir and not os.path.isdir(model_dir)
    try:
        tf.io.gfile.makedirs(model_dir)
        probe = os.path.join(model_dir, f".write_test_{os.getpid()}")  # one per worker
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        message = getattr(error, "strerror", None) or getattr(error, "message", str(error))
        raise ConfigError(f"model_dir {model_dir!r} is not writable: {message}") from None
    if made:
        with contextlib.suppress(OSError):  # another worker's probe is in it
            os.rmdir(model_dir)


def check_disk(model_dir, needed):
    """Room for one more checkpoint (local folders; object stores skip)."""
    if "://" in model_dir:
        return
    folder = os.path.abspath(model_dir)
    while not os.path.isdir(folder):  # not made yet: the disk it will be on
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ConfigError(
            f"model_dir {model_dir!r}: {free / 1e6:.1f} MB free on its disk, one checkpoint "
            f"needs {needed / 1e6:.1f} MB"
        )
