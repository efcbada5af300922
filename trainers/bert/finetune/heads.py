"""The fine-tuning tasks (`trainers.bert.model.tasks`' interface): the encoder
with a classification or regression head on the pooled output (GLUE and
the built-in topic task) or a span head on every token (SQuAD), their losses
as sums over the batch, and their records.

Heads are initialised as google-research/bert's (truncated normal, 0.02),
drawn by NumPy from the run's seed: a run starts from the same weights on
either engine. The encoder takes the preset's weights, or keeps its random
initialisation (`pretrained=False`: the baseline that shows what
pretraining gave).
"""

import zlib

import keras
import numpy as np
from keras import ops

from trainers.bert.finetune import layer_decay
from trainers.bert.model import bert as model_lib
from trainers.bert.run import flops

ENCODER_INPUTS = ("token_ids", "segment_ids", "padding_mask")


class _FineTuning:
    inputs = ENCODER_INPUTS
    outputs = ()  # what prediction keeps, per example
    labels = {}  # record feature -> its dtype's name

    def __init__(self, weights=None):
        self.weights = weights  # the encoder's weights file; None: random
        self.layer_decay = None  # layer-wise learning-rate decay; None: off
        self.seed = 0  # the run's: the head's initial weights

    def _backbone(self, config):
        backbone = model_lib.build_backbone(config)
        if self.weights:
            backbone.load_weights(self.weights)
        return backbone

    def _inputs(self):
        return {n: keras.Input((None,), dtype="int32", name=n) for n in ENCODER_INPUTS}

    def rate_factors(self, model):
        if self.layer_decay is None:
            return None
        backbone = model.get_layer("bert_backbone")
        return layer_decay.factors(model.trainable_variables, backbone.num_layers, self.layer_decay)

    def totals(self, batch):
        return ops.stack([ops.cast(ops.shape(batch["padding_mask"])[0], "float32")])

    def flops_per_sequence(self, config, phase):
        return flops.training_flops_per_sequence(config, phase.seq_length, 0)

    def parser(self, phase, names=None):
        """Records of `records.serialize` at the phase's sequence length."""
        import tensorflow as tf  # the input pipeline's; the steps need none

        length = phase.seq_length
        spec = {
            "input_ids": tf.io.FixedLenFeature([length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([length], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([length], tf.int64),
            "index": tf.io.FixedLenFeature([1], tf.int64),
        }
        for name, dtype in self.labels.items():  # test sets have none: 0
            spec[name] = tf.io.FixedLenFeature([1], dtype, default_value=[np.dtype(dtype).type(0)])

        def parse(serialized):
            example = tf.io.parse_example(serialized, spec)
            batch = {
                "token_ids": tf.cast(example["input_ids"], tf.int32),
                "segment_ids": tf.cast(example["segment_ids"], tf.int32),
                "padding_mask": tf.cast(example["input_mask"], tf.int32),
                "index": tf.cast(example["index"][:, 0], tf.int32),
            }
            for name, dtype in self.labels.items():
                value = example[name][:, 0]
                batch[name] = tf.cast(value, tf.int32) if dtype == "int64" else value
            return batch

        return parse


class TruncatedNormal(keras.initializers.Initializer):
    """A normal of `stddev`, values beyond two standard deviations drawn
    again (as `tf.random.truncated_normal`), by NumPy from `seed`: the same
    values on every Keras backend."""

    def __init__(self, stddev, seed):
        self.stddev, self.seed = stddev, seed

    def __call__(self, shape, dtype=None):
        rng = np.random.default_rng(self.seed)
        values = rng.standard_normal(shape)
        while (outside := np.abs(values) > 2.0).any():
            values[outside] = rng.standard_normal(int(outside.sum()))
        return ops.convert_to_tensor(self.stddev * values, dtype=dtype)

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed}


def _dense(units, name, seed):
    initializer = TruncatedNormal(0.02, seed=[seed, zlib.crc32(name.encode())])
    return keras.layers.Dense(units, kernel_initializer=initializer, name=name)


class Classification(_FineTuning):
    """`num_labels` classes, or a regression (`num_labels=None`, STS-B's
    mean squared error), on the pooled [CLS] output."""

    sums = ("loss_sum", "correct", "sequences")
    outputs = ("logits",)

    def __init__(self, num_labels, weights=None):
        super().__init__(weights)
        self.num_labels = num_labels
        self.regression = num_labels is None
        self.labels = {"label": "float32" if self.regression else "int64"}
        self.shown = () if self.regression else (("accuracy", "acc"),)

    def build(self, config):
        backbone = self._backbone(config)
        inputs = self._inputs()
        pooled = backbone(inputs)["pooled_output"]
        pooled = keras.layers.Dropout(config.dropout, name="classifier_dropout")(pooled)
        units = 1 if self.regression else self.num_labels
        logits = _dense(units, "classifier", self.seed)(pooled)
        logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
        return keras.Model(inputs, {"logits": logits}, name="bert_classifier")

    def batch_sums(self, outputs, batch):
        logits, labels = ops.cast(outputs["logits"], "float32"), batch["label"]
        if self.regression:
            losses = ops.square(logits[:, 0] - ops.cast(labels, "float32"))
            correct = ops.zeros_like(losses)
        else:
            losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            correct = ops.cast(
                ops.equal(ops.argmax(logits, -1), ops.cast(labels, "int32")), "float32"
            )
        return ops.stack(
            [ops.sum(losses), ops.sum(correct), ops.cast(ops.shape(losses)[0], "float32")]
        )

    def loss(self, sums, totals):
        return sums[0] / ops.maximum(totals[0], 1.0)

    def figures(self, sums):
        loss_sum, correct, sequences = (float(s) for s in sums)
        figures = {"loss": loss_sum / max(sequences, 1.0)}
        if not self.regression:
            figures["accuracy"] = correct / max(sequences, 1.0)
        return figures


class Span(_FineTuning):
    """Start and end logits on every token (SQuAD); the loss is the mean of
    the start and end cross-entropies."""

    sums = ("loss_sum", "start_correct", "end_correct", "sequences")
    outputs = ("start_logits", "end_logits")
    labels = {"start_positions": "int64", "end_positions": "int64"}
    shown = (("start_accuracy", "start_acc"), ("end_accuracy", "end_acc"))

    def build(self, config):
        backbone = self._backbone(config)
        inputs = self._inputs()
        logits = _dense(2, "span_head", self.seed)(backbone(inputs)["sequence_output"])
        logits = keras.layers.Activation("linear", dtype="float32", name="span_logits")(logits)
        start, end = logits[..., 0], logits[..., 1]
        return keras.Model(inputs, {"start_logits": start, "end_logits": end}, name="bert_span")

    def batch_sums(self, outputs, batch):
        sums, hits = 0.0, []
        for side in ("start", "end"):
            logits = ops.cast(outputs[f"{side}_logits"], "float32")
            labels = batch[f"{side}_positions"]
            sums += keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            hit = ops.equal(ops.argmax(logits, -1), ops.cast(labels, "int32"))
            hits.append(ops.sum(ops.cast(hit, "float32")))
        sequences = ops.cast(ops.shape(sums)[0], "float32")
        return ops.stack([ops.sum(sums) / 2.0, hits[0], hits[1], sequences])

    def loss(self, sums, totals):
        return sums[0] / ops.maximum(totals[0], 1.0)

    def figures(self, sums):
        loss_sum, start, end, sequences = (float(s) for s in sums)
        n = max(sequences, 1.0)
        return {"loss": loss_sum / n, "start_accuracy": start / n, "end_accuracy": end / n}
