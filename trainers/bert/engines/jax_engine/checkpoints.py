"""Checkpoints of the JAX engine, written by orbax-checkpoint.

`model_dir/checkpoints/<step>/` holds the state (weights, dropout seed
states, optimizer state, step) and a small JSON of the step and phase;
beside it, each process keeps the position of its own input iterator at
that step (`input/worker_<i>/`, `trainers.bert.engines.positions`). The input
positions are written first and all processes meet before orbax commits
the checkpoint: orbax writes a step into a temporary folder and renames it
once complete, so a job killed at any moment resumes from the newest
complete checkpoint, and a temporary folder is never taken for one.

Orbax logs each save and read, dozens of lines, at INFO through absl's
logger; below WARNING they are dropped unless the command was given
`--verbosity`.
"""

import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorflow as tf
from absl import flags
from absl import logging as absl_logging
from jax.experimental import multihost_utils

from trainers.bert.engines.positions import InputPositions, remove
from trainers.bert.errors import TrainingError, resumes_from
from trainers.bert.run.checkpoint import Checkpoint

CHECKPOINTS = "checkpoints"
TEMPORARY = ".orbax-checkpoint-tmp"  # orbax's suffix of a step being written
ORBAX_SOURCE = os.path.dirname(ocp.__file__) + os.sep


def _verbosity_asked():
    return flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].present


class _OrbaxWarningsOnly(logging.Filter):
    def filter(self, record):
        return (
            record.levelno >= logging.WARNING
            or not record.pathname.startswith(ORBAX_SOURCE)
            or _verbosity_asked()
        )


def quiet_orbax():
    """Orbax's records below WARNING dropped (see the module's docstring)."""
    logger = absl_logging.get_absl_logger()
    if not any(isinstance(f, _OrbaxWarningsOnly) for f in logger.filters):
        logger.addFilter(_OrbaxWarningsOnly())


class Checkpointer:
    def __init__(self, model_dir, max_to_keep=3):
        quiet_orbax()
        directory = os.path.join(model_dir, CHECKPOINTS)
        # Orbax takes absolute paths only (a relative --model_dir is a user's).
        self.directory = directory if "://" in directory else os.path.abspath(directory)
        self.positions = InputPositions(self.directory, jax.process_index())
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
            ),
            item_names=("state", "meta"),
        )

    def latest(self):
        """The newest complete `Checkpoint`, or None."""
        self._manager.reload()
        step = self._manager.latest_step()
        if step is None:
            return None
        meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return Checkpoint(os.path.join(self.directory, str(step)), step, meta.meta["phase"])

    def save(self, state, phase):
        """Writes the checkpoint of `state`'s step; returns its path. A save
        that fails (a full disk, a lost connection) leaves no part of itself
        behind and raises `TrainingError` naming the newest complete
        checkpoint."""
        step = int(state.step)
        try:
            self.positions.write(step)
            multihost_utils.sync_global_devices(f"input positions of step {step}")
            self._manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    meta=ocp.args.JsonSave({"step": step, "phase": phase}),
                ),
                force=True,
            )
            self._manager.wait_until_finished()
        except (OSError, ValueError) as error:
            self.remove_partial()
            raise TrainingError(
                f"saving the checkpoint of step {step} in {self.directory} failed ({error}); "
                f"its partial files were removed. A restart resumes from "
                f"{resumes_from(self.latest())}"
            ) from None
        self.positions.remove_other_than(set(self._manager.all_steps()))
        return os.path.join(self.directory, str(step))

    def restore(self, checkpoint, like, with_input=False):
        """The state saved in `checkpoint`, placed as `like` is; the input
        position too if `with_input` (it was saved for the phase now
        starting)."""
        restored = self._manager.restore(
            checkpoint.step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(like)),
        )
        if with_input:
            self.positions.read(checkpoint.step, checkpoint.path)
        return type(like)(*restored.state)

    def remove_partial(self):
        """Removes what failed or killed saves left; returns the paths."""
        complete = set(self._manager.all_steps())
        found = self.positions.partial("*", complete)  # each process its own
        if jax.process_index() == 0:
            found += [
                os.path.join(self.directory, name)
                for name in tf.io.gfile.listdir(self.directory)
                if TEMPORARY in name
            ]
        remove(found)
        return found


def saved_state(path):
    """{name: array} of every training value in the checkpoint at `path`
    (a step folder): weights, dropout seed states, optimizer state, step."""
    quiet_orbax()
    path = os.path.join(path, "state")
    checkpointer = ocp.PyTreeCheckpointer()
    # As host arrays: the devices it was saved from may not be here.
    tree = checkpointer.metadata(path).item_metadata
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    state = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(key): np.asarray(value) for key, value in leaves}
