"""Where a worker's training input stands at each checkpoint.

Both engines read the training records through `tf.data`, whose iterator
state can be saved: each worker writes its own beside the checkpoint of the
same step, `checkpoints/input/worker_<i>/position-<step>`, before the
checkpoint itself is committed, so a restarted job continues every worker
with its next batch.
"""

import os

import tensorflow as tf

INPUT = "input"


class InputPositions:
    """The input positions of worker `worker` under `checkpoints_dir`."""

    def __init__(self, checkpoints_dir, worker=0):
        self.directory = os.path.join(checkpoints_dir, INPUT, f"worker_{worker}")
        self._iterator = None

    def track(self, iterator):
        """The iterator of the phase now running (None: positions not saved)."""
        self._iterator = None if iterator is None else tf.train.Checkpoint(iterator=iterator)

    def path(self, step):
        return os.path.join(self.directory, f"position-{step}")

    def write(self, step):
        """Saves the tracked iterator's position (nothing if none)."""
        if self._iterator is not None:
            self._iterator.write(self.path(step))

    def read(self, step, checkpoint_path):
        """Moves the tracked iterator to its position at `step`."""
        position = self.path(step)
        if not tf.io.gfile.exists(position + ".index"):
            raise FileNotFoundError(
                f"{checkpoint_path} has no input position for this worker ({position}); was "
                "the job restarted with other workers?"
            )
        self._iterator.read(position).assert_existing_objects_matched()

    def remove_other_than(self, kept_steps):
        """Removes the positions of steps whose checkpoints are gone."""
        for index in tf.io.gfile.glob(self.path("*") + ".index"):
            if step_of(index[: -len(".index")]) not in kept_steps:
                for stale in tf.io.gfile.glob(index[: -len(".index")] + ".*"):
                    tf.io.gfile.remove(stale)

    def partial(self, number, complete):
        """The files of positions of `number` ("*": any step) that belong to
        no complete checkpoint (steps in `complete`)."""
        prefix = self.path(number)
        found = tf.io.gfile.glob(prefix + "_temp*")  # a save's working folder
        return found + [
            p
            for p in tf.io.gfile.glob(prefix + ".*")
            if step_of(os.path.basename(p).split(".")[0]) not in complete
        ]


def step_of(path):
    """The step of a `...-<step>` path."""
    return int(path.rsplit("-", 1)[1])


def remove(paths):
    """Removes files and folders."""
    for path in paths:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
