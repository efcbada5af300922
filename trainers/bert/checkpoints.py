"""Checkpoints of a pretraining run, and the exported encoder.

A checkpoint holds the model, the optimizer (moments, iteration count), the
loss scale, the global step, the phase, and the position of that phase's
input iterator, so a restarted job continues with the next batch. Files go
through `tf.train.CheckpointManager`: the index names a checkpoint only once
all its files are written, so a job killed mid-save resumes from the one
before.
"""

import os

import tensorflow as tf

CHECKPOINTS = "checkpoints"
ENCODER = "encoder"


class Checkpointer:
    """Under MultiWorkerMirroredStrategy every worker saves (saving is a
    collective), but only the chief into `model_dir`; the others write to a
    scratch folder that is removed after each save."""

    def __init__(
        self, model_dir, model, optimizer, step, phase, extra=None, max_to_keep=3, strategy=None
    ):
        self.directory = os.path.join(model_dir, CHECKPOINTS)
        self.is_chief = strategy is None or strategy.extended.should_checkpoint
        self._write_directory = self.directory
        if not self.is_chief:
            task = strategy.cluster_resolver.task_id
            self._write_directory = os.path.join(model_dir, f"worker_{task}_scratch")
        self.objects = {"model": model, "optimizer": optimizer, "step": step, "phase": phase}
        self.objects.update(extra or {})
        self.max_to_keep = max_to_keep
        self._manager = None

    def latest(self):
        """(path, global step, phase index) of the newest checkpoint, or None."""
        path = tf.train.latest_checkpoint(self.directory)
        if path is None:
            return None
        reader = tf.train.load_checkpoint(path)
        value = "/.ATTRIBUTES/VARIABLE_VALUE"
        return path, int(reader.get_tensor("step" + value)), int(reader.get_tensor("phase" + value))

    def track_iterator(self, iterator):
        """The input iterator of the phase now running (None: not saved)."""
        objects = dict(self.objects)
        if iterator is not None:
            objects["iterator"] = iterator
        checkpoint = tf.train.Checkpoint(**objects)
        self._manager = tf.train.CheckpointManager(
            checkpoint,
            self._write_directory,
            max_to_keep=self.max_to_keep,
            step_counter=objects["step"],
        )

    def restore(self, path, with_iterator):
        """Restores everything; the iterator only if `with_iterator` (it
        was saved for the phase now starting)."""
        checkpoint = self._manager.checkpoint
        if not with_iterator:
            checkpoint = tf.train.Checkpoint(**self.objects)
        status = checkpoint.restore(path)
        if with_iterator:
            status.assert_existing_objects_matched()
        else:
            status.expect_partial()

    def save(self):
        path = self._manager.save(checkpoint_number=self.objects["step"])
        if not self.is_chief:
            tf.io.gfile.rmtree(self._write_directory)
            return None
        return path


def export_encoder(model_dir, backbone, vocab_file=None, lowercase=True):
    """The encoder as a keras-hub preset directory (config.json and weights,
    plus the tokenizer when the vocabulary is known), loadable with
    `keras_hub.models.BertBackbone.from_preset(path)` for fine-tuning."""
    import keras_hub

    path = os.path.join(model_dir, ENCODER)
    backbone.save_to_preset(path)
    if vocab_file:
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab_file, lowercase=lowercase)
        tokenizer.save_to_preset(path)
    return path
