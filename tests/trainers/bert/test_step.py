"""The train step: k accumulated micro-batches give the update of one batch
k times the size, and two replicas give the update of one device, to float
tolerance; non-finite steps are skipped."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from trainers.bert import builtin_data, data, model
from trainers.bert.step import Steps

SEQ, PREDICTIONS, GLOBAL_BATCH = 32, 5, 8


@pytest.fixture(scope="module")
def files(builtin_data_dir):
    pattern, _ = builtin_data.shards(builtin_data_dir, SEQ, PREDICTIONS)
    return data.match_files(pattern)


def _train(files, strategy, accumulation_steps, optimizer=lamb_tf.LAMB, steps=3, poison=False):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        config = model.preset("tiny", vocabulary_size=builtin_data.VOCAB_SIZE, dropout=0.0)
        net = model.build_pretraining_model(config)
        step = tf.Variable(0, dtype=tf.int64, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        opt = optimizer(learning_rate=0.01, weight_decay=0.01)
        opt.build(net.trainable_variables)
        runner = Steps(net, opt, strategy, step, accumulation_steps, clip_norm=1.0)
    per_replica = GLOBAL_BATCH // strategy.num_replicas_in_sync

    def dataset(context):
        ds = data.make_dataset(files, SEQ, PREDICTIONS, per_replica, input_context=context)
        if poison:  # a NaN masked-LM weight in the second batch
            ds = ds.enumerate().map(lambda i, b: _poison(b, i == 1))
        return ds

    iterator = iter(strategy.distribute_datasets_from_function(dataset))
    sums, norm, skipped = runner.train(iterator, tf.constant(steps, tf.int64))
    weights = [v.numpy() for v in net.trainable_variables]
    return weights, sums.numpy(), int(step.numpy()), int(skipped), opt


def _poison(batch, on):
    weights = batch["masked_lm_weights"]
    batch["masked_lm_weights"] = tf.where(on, weights * np.nan, weights)
    return batch


def _max_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def one_device(files):
    return _train(files, tf.distribute.get_strategy(), 1)


def test_accumulated_micro_batches_equal_one_large_batch(files, one_device):
    weights, sums, step, _, _ = _train(files, tf.distribute.get_strategy(), 4)
    assert step == one_device[2] == 3
    assert _max_difference(weights, one_device[0]) < 1e-5
    np.testing.assert_allclose(sums, one_device[1], rtol=1e-5)


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_two_logical_devices_equal_one_device(files, one_device, accumulation_steps):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    weights, sums, _, _, _ = _train(files, mirrored, accumulation_steps)
    assert _max_difference(weights, one_device[0]) < 1e-5
    np.testing.assert_allclose(sums, one_device[1], rtol=1e-5)


def test_updates_are_not_the_same_as_fewer_steps(files, one_device):
    # The tolerance above tells different trajectories apart.
    weights = _train(files, tf.distribute.get_strategy(), 1, steps=2)[0]
    assert _max_difference(weights, one_device[0]) > 1e-3


def test_keras_optimizers_on_two_devices_equal_one_device(files):
    # Keras' own optimizers all-reduce again inside `apply`.
    single = _train(files, tf.distribute.get_strategy(), 1, keras.optimizers.AdamW)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    double = _train(files, mirrored, 1, keras.optimizers.AdamW)
    assert _max_difference(single[0], double[0]) < 1e-5


def test_a_non_finite_step_is_skipped(files):
    weights, _, step, skipped, opt = _train(files, tf.distribute.get_strategy(), 1, poison=True)
    assert skipped == 1 and step == 2 and int(opt.iterations.numpy()) == 2
    assert all(np.isfinite(w).all() for w in weights)
