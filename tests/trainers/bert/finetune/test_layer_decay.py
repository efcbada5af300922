"""Layer-wise learning-rate decay as the engine's step applies it (each
variable's change scaled by its factor after the optimizer's update) is the
step at factor x the rate, over several steps, for AdamW, LAMB and LARS:
their steps are linear in the learning rate and their moments do not depend
on it. (Which factor each layer gets: finetune/test_train.py.)"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from tests import float32
from trainers.bert.engines.tf_engine.steps import Steps

BATCH, STEPS, FACTOR = 16, 4, 0.25


class Regression:
    """The least a task gives the step (`trainers.bert.model.tasks`): a squared
    error summed over the batch, normalised by the global batch."""

    inputs = ("x",)
    sums = ("squared_error",)

    def totals(self, batch):
        return tf.cast(tf.shape(batch["x"])[:1], tf.float32)

    def batch_sums(self, outputs, batch):
        return tf.reshape(tf.reduce_sum(tf.square(outputs[:, 0] - batch["y"])), [1])

    def loss(self, sums, totals):
        return sums[0] / totals[0]


def _weights(optimizer, learning_rate, rate_factor=None):
    """(initial, final) weights after STEPS updates; every variable's change
    scaled by `rate_factor` (None: unscaled)."""
    keras.utils.set_random_seed(1)
    x = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(16, activation="tanh", name="dense")(x)
    hidden = keras.layers.LayerNormalization(name="layer_norm")(hidden)
    net = keras.Model({"x": x}, keras.layers.Dense(1, name="out")(hidden))
    opt = optimizer(learning_rate=learning_rate)
    opt.build(net.trainable_variables)
    initial = [v.numpy() for v in net.trainable_variables]
    factors = None if rate_factor is None else [rate_factor] * len(initial)
    step = tf.Variable(0, dtype=tf.int64)
    runner = Steps(
        net,
        opt,
        tf.distribute.get_strategy(),
        step,
        clip_norm=1.0,
        jit_compile=False,  # compiling would cost more than these few steps
        task=Regression(),
        rate_factors=factors,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * STEPS, 8)).astype("float32")
    y = np.sin(x.sum(axis=1)).astype("float32")
    batches = iter(tf.data.Dataset.from_tensor_slices({"x": x, "y": y}).batch(BATCH))
    runner.train(batches, tf.constant(STEPS, tf.int64))
    assert int(step.numpy()) == STEPS
    return initial, [v.numpy() for v in net.trainable_variables]


@pytest.mark.parametrize(
    "optimizer, learning_rate",
    [
        (functools.partial(keras.optimizers.AdamW, weight_decay=0.01), 1e-2),
        (
            functools.partial(lamb_tf.LAMB, weight_decay=0.01, exclude_from_weight_decay=["bias"]),
            1e-2,
        ),
        (
            functools.partial(lamb_tf.LARS, weight_decay=0.01, exclude_from_weight_decay=["bias"]),
            1.0,
        ),
    ],
    ids=["AdamW", "LAMB", "LARS"],
)
def test_a_scaled_change_is_the_step_at_the_scaled_rate(optimizer, learning_rate):
    initial, scaled = _weights(optimizer, learning_rate, rate_factor=FACTOR)
    _, slower = _weights(optimizer, FACTOR * learning_rate)
    _, unscaled = _weights(optimizer, learning_rate)
    atol = float32.weights_atol(initial, slower)  # the two differ in rounding only
    for a, b in zip(scaled, slower):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    # The tolerance tells the scaled step from the unscaled one.
    assert max(float(np.abs(a - b).max()) for a, b in zip(scaled, unscaled)) > 100 * atol
