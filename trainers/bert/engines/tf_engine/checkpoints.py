"""Checkpoints of a pretraining run under a tf.distribute strategy.

A checkpoint holds the model, its dropout seed states, the optimizer
(moments, iteration count), the loss scale, the global step and the phase;
beside it, each worker keeps the position of its own input iterator at that
step (`input/worker_<i>/`), so a restarted job continues every worker with
its next batch. The input positions are written first and all workers meet
before the chief commits the checkpoint through `tf.train.CheckpointManager`,
whose index names a checkpoint only once all its files are written: a job
killed at any moment resumes from the newest complete checkpoint.
"""

import os

import tensorflow as tf

from trainers.bert.engines.positions import InputPositions, remove, step_of
from trainers.bert.engines.tf_engine import strategies
from trainers.bert.errors import TrainingError, resumes_from, tensorflow_message
from trainers.bert.run.checkpoint import Checkpoint

CHECKPOINTS = "checkpoints"


class Checkpointer:
    """Under MultiWorkerMirroredStrategy every worker saves (saving is a
    collective), but only the chief into `model_dir`; the others write the
    model to a scratch folder that is removed after each save, and only
    their input positions into `model_dir`."""

    def __init__(
        self, model_dir, model, optimizer, step, phase, extra=None, max_to_keep=3, strategy=None
    ):
        self.directory = os.path.join(model_dir, CHECKPOINTS)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_chief = self.strategy.extended.should_checkpoint
        resolver = getattr(self.strategy, "cluster_resolver", None)
        worker = resolver.task_id if resolver is not None and resolver.task_id else 0
        self.positions = InputPositions(self.directory, worker)
        self._write_directory = self.directory
        if not self.is_chief:
            self._write_directory = os.path.join(model_dir, f"worker_{worker}_scratch")
        self.objects = {"model": model, "optimizer": optimizer, "step": step, "phase": phase}
        # Variables outside the weights: the dropout seed generators' states,
        # without which a resumed run would draw other dropout masks.
        weights = {id(w) for w in model.weights}
        self.objects["random_state"] = [v for v in model.variables if id(v) not in weights]
        self.objects.update(extra or {})
        self._manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(**self.objects),
            self._write_directory,
            max_to_keep=max_to_keep,
            step_counter=step,
        )

    def latest(self):
        """The newest `Checkpoint`, or None."""
        path = tf.train.latest_checkpoint(self.directory)
        if path is None:
            return None
        reader = tf.train.load_checkpoint(path)
        value = "/.ATTRIBUTES/VARIABLE_VALUE"
        return Checkpoint(
            path, int(reader.get_tensor("step" + value)), int(reader.get_tensor("phase" + value))
        )

    def restore(self, path, with_iterator):
        """Restores everything; the input position only if `with_iterator`
        (it was saved for the phase now starting)."""
        self._manager.checkpoint.restore(path).assert_existing_objects_matched()
        if with_iterator:
            self.positions.read(step_of(path), path)

    def state_is_finite(self):
        """Every float of the model and optimizer is finite (checked before
        each save: a checkpoint never holds a NaN or Inf)."""
        model, optimizer = self.objects["model"], self.objects["optimizer"]
        values = [
            v.value
            for v in model.weights + optimizer.variables
            if v.dtype in ("float16", "bfloat16", "float32", "float64")
        ]
        return bool(_all_finite(values))

    def save(self):
        """Writes the checkpoint of the current step; returns its path (None
        on a worker other than the chief). A save that fails (a full disk, a
        lost connection) leaves no part of itself behind and raises
        `TrainingError` naming the newest complete checkpoint."""
        step = int(self.objects["step"].numpy())
        try:
            return self._save(step)
        except (OSError, tf.errors.OpError) as error:
            self.remove_partial(step)
            newest = self.latest()
            raise TrainingError(
                f"saving the checkpoint of step {step} in {self._write_directory} failed "
                f"({tensorflow_message(error)}); its partial files were removed. A "
                f"restart resumes from {resumes_from(newest)}"
            ) from None

    def remove_partial(self, step=None):
        """Removes what failed saves left (of `step`, or of every step that
        is not a complete checkpoint); returns the paths removed."""
        # The complete checkpoints are the chief's, also for the other workers.
        state = tf.train.get_checkpoint_state(self.directory)
        complete = {step_of(p) for p in (state.all_model_checkpoint_paths if state else [])}
        number = "*" if step is None else str(step)
        prefix = os.path.join(self._write_directory, f"ckpt-{number}")
        found = tf.io.gfile.glob(prefix + "_temp*")  # a save's working folder
        found += [
            p
            for p in tf.io.gfile.glob(prefix + ".*")
            if step_of(os.path.basename(p).split(".")[0]) not in complete
        ]
        found += self.positions.partial(number, complete)
        remove(found)
        return found

    def _save(self, step):
        self.positions.write(step)
        _barrier(self.strategy)  # every input position is on disk
        path = self._manager.save(checkpoint_number=step)
        self.positions.remove_other_than({step_of(p) for p in self._manager.checkpoints})
        if not self.is_chief:
            tf.io.gfile.rmtree(self._write_directory)
            return None
        return path


def saved_state(path):
    """{name: array} of every training value in the checkpoint at `path`
    (weights, optimizer state, step, phase; not the save count)."""
    reader = tf.train.load_checkpoint(path)
    bookkeeping = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")
    names = set(reader.get_variable_to_shape_map()) - set(bookkeeping)
    return {name: reader.get_tensor(name) for name in names}


def _barrier(strategy):
    """Returns once every worker got here (a no-op on one worker)."""
    if strategy.num_replicas_in_sync > strategies.local_replicas(strategy):
        _all_reduce_one(strategy)


@tf.function
def _all_reduce_one(strategy):
    return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("sum", 1.0))


@tf.function
def _all_finite(values):
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in values])
