"""The train step: k accumulated micro-batches give the update of one batch
k times the size, and two replicas give the update of one device: the same
start, no dropout, no clipping, weights and optimizer moments equal to
float32 rounding (tests/float32.py), a tolerance a doubled gradient does not
pass; the loss it minimises is NumPy's cross-entropy of the batch;
non-finite steps are skipped; the squared gradient norms of the pieces of an
update (for the gradient noise scale) are those of each piece's own
gradient."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from lamb_tf import tf_dispatch
from tests import float32, numpy_loss
from trainers.bert.data import patterns
from trainers.bert.data.input import pipeline
from trainers.bert.data.shards import builtin
from trainers.bert.engines.tf_engine.steps import Steps
from trainers.bert.model import bert as model
from trainers.bert.model import tasks

SEQ, PREDICTIONS, GLOBAL_BATCH = 32, 5, 8
Run = collections.namedtuple("Run", "weights sums step skipped optimizer initial noise slots")


@pytest.fixture(scope="module")
def files(builtin_data_dir):
    pattern, _ = builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    return patterns.match_files(pattern)


def _train(
    files,
    strategy,
    accumulation_steps,
    optimizer=lamb_tf.LAMB,
    steps=3,
    poison=False,
    distributed_iterator=False,
    task=tasks.PRETRAINING,
):
    """`distributed_iterator`: per-replica batches from
    `distribute_datasets_from_function` (the TPU path) instead of one
    checkpointable iterator whose batches the step splits."""
    keras.utils.set_random_seed(1)
    with strategy.scope():
        config = model.preset("tiny", vocabulary_size=builtin.VOCAB_SIZE, dropout=0.0)
        net = model.build_pretraining_model(config)
        step = tf.Variable(0, dtype=tf.int64, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        opt = optimizer(learning_rate=0.01, weight_decay=0.01)
        opt.build(net.trainable_variables)
        initial = [v.numpy() for v in net.trainable_variables]
        runner = Steps(
            net,
            opt,
            strategy,
            step,
            accumulation_steps,
            clip_norm=None,  # clipping would hide a gradient of the wrong size
            jit_compile=tf_dispatch.xla_compiles_under(strategy),  # as the engine decides
            split_batch=not distributed_iterator,
            noise_scale=accumulation_steps * strategy.num_replicas_in_sync > 1,
            task=task,
        )

    def dataset(context, batch_size):
        ds = pipeline.make_dataset(files, SEQ, PREDICTIONS, batch_size, input_context=context)
        if poison:  # a NaN masked-LM weight in the second batch
            ds = ds.enumerate().map(lambda i, b: _poison(b, i == 1))
        return ds

    if distributed_iterator:
        per_replica = GLOBAL_BATCH // strategy.num_replicas_in_sync
        batches = strategy.distribute_datasets_from_function(lambda c: dataset(c, per_replica))
        iterator = iter(batches)
    else:
        iterator = iter(dataset(None, GLOBAL_BATCH))
    sums, norm, skipped, _, noise = runner.train(iterator, tf.constant(steps, tf.int64))
    weights = [v.numpy() for v in net.trainable_variables]
    slots = float32.optimizer_slots(opt)
    return Run(
        weights, sums.numpy(), int(step.numpy()), int(skipped), opt, initial, noise.numpy(), slots
    )


def _poison(batch, on):
    weights = batch["masked_lm_weights"]
    batch["masked_lm_weights"] = tf.where(on, weights * np.nan, weights)
    return batch


def _max_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def _atol(run):
    """Reduction-order rounding only (tests/float32.py)."""
    return float32.weights_atol(run.initial, run.weights)


def _assert_same_run(expected, got):
    float32.assert_same_weights(expected.initial, expected.weights, got.weights)
    float32.assert_same_slots(expected.slots, got.slots)
    np.testing.assert_allclose(got.sums, expected.sums, rtol=float32.SUMS_RTOL)


class _HalvedTotals(tasks.Pretraining):
    """A loss normalised by half the batch's targets: twice the gradient,
    as a step that divided by one replica's share of two would give."""

    def totals(self, batch):
        return super().totals(batch) / 2


@pytest.fixture(scope="module")
def one_device(files):
    return _train(files, tf.distribute.get_strategy(), 1)


def test_accumulated_micro_batches_equal_one_large_batch(files, one_device):
    accumulated = _train(files, tf.distribute.get_strategy(), 4)
    assert accumulated.step == one_device.step == 3
    _assert_same_run(one_device, accumulated)


def test_a_doubled_gradient_is_told_apart_by_the_moments(files, one_device):
    doubled = _train(files, tf.distribute.get_strategy(), 1, task=_HalvedTotals())
    # LAMB's step barely changes when every gradient doubles (only through
    # epsilon, for the rare tokens' rows); the moments double and quadruple.
    with pytest.raises(AssertionError, match="Mismatched elements"):
        float32.assert_same_slots(one_device.slots, doubled.slots)
    for kind, factor in (("momentum", 2), ("velocity", 4)):
        names = [k for k in one_device.slots if k.endswith(f"_{kind}")]
        ratio = _norm(doubled.slots, names) / _norm(one_device.slots, names)
        assert ratio == pytest.approx(factor, rel=0.01), kind


def _norm(slots, names):
    return np.sqrt(sum(float(np.sum(np.square(slots[n], dtype=np.float64))) for n in names))


# One plain iterator without accumulation runs in tests/trainers/bert/test_train.py.
@pytest.mark.parametrize(
    "distributed_iterator, accumulation_steps", [(False, 2), (True, 1), (True, 2)]
)
def test_two_logical_devices_equal_one_device(
    files, one_device, accumulation_steps, two_cpus, distributed_iterator
):
    run = _train(files, two_cpus, accumulation_steps, distributed_iterator=distributed_iterator)
    _assert_same_run(one_device, run)


def test_updates_are_not_the_same_as_fewer_steps(files, one_device):
    # The tolerance above tells different trajectories apart.
    weights = _train(files, tf.distribute.get_strategy(), 1, steps=2)[0]
    assert _max_difference(weights, one_device[0]) > 10 * _atol(one_device)


def test_keras_optimizers_on_two_devices_equal_one_device(files, two_cpus):
    # Keras' own optimizers all-reduce again inside `apply`.
    single = _train(files, tf.distribute.get_strategy(), 1, keras.optimizers.AdamW)
    double = _train(files, two_cpus, 1, keras.optimizers.AdamW)
    _assert_same_run(single, double)


def test_the_step_minimises_numpys_cross_entropy_of_the_batch(files):
    # One step: its sums are the forward pass at the initial weights.
    run = _train(files, tf.distribute.get_strategy(), 2, steps=1)
    keras.utils.set_random_seed(1)
    config = model.preset("tiny", vocabulary_size=builtin.VOCAB_SIZE, dropout=0.0)
    net = model.build_pretraining_model(config)
    for variable, value in zip(net.trainable_variables, run.initial):
        variable.assign(value)
    batch = next(iter(pipeline.make_dataset(files, SEQ, PREDICTIONS, GLOBAL_BATCH)))
    outputs = net({n: batch[n] for n in tasks.PRETRAINING.inputs}, training=False)
    want = numpy_loss.pretraining(outputs, {k: v.numpy() for k, v in batch.items()})
    got = float(model.losses_from_sums(run.sums)["loss"])
    assert got == pytest.approx(want, rel=float32.SUMS_RTOL)


def test_a_non_finite_step_is_skipped(files):
    weights, _, step, skipped, opt, *_ = _train(files, tf.distribute.get_strategy(), 1, poison=True)
    assert skipped == 1 and step == 2 and int(opt.iterations.numpy()) == 2
    assert all(np.isfinite(w).all() for w in weights)


def _piece_norms(files, pieces):
    """(m x the sum of the pieces' squared gradient norms, the squared norm
    of their sum) of the first batch at the initial weights, each piece's
    gradient taken on its own (its loss normalised by the whole batch)."""
    keras.utils.set_random_seed(1)
    config = model.preset("tiny", vocabulary_size=builtin.VOCAB_SIZE, dropout=0.0)
    net = model.build_pretraining_model(config)
    batch = next(iter(pipeline.make_dataset(files, SEQ, PREDICTIONS, GLOBAL_BATCH)))
    totals = tasks.PRETRAINING.totals(batch)
    squares, total = [], None
    for piece in range(pieces):
        part = {n: tf.split(t, pieces)[piece] for n, t in batch.items()}
        with tf.GradientTape() as tape:
            outputs = net({n: part[n] for n in tasks.PRETRAINING.inputs}, training=True)
            sums = tasks.PRETRAINING.batch_sums(outputs, part)
            loss = tasks.PRETRAINING.loss(sums, totals)
        grads = tape.gradient(loss, net.trainable_variables)
        grads = [tf.convert_to_tensor(g).numpy().astype(np.float64) for g in grads]
        squares.append(sum(float((g**2).sum()) for g in grads))
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
    return pieces * sum(squares), sum(float((g**2).sum()) for g in total)


@pytest.mark.parametrize("replicas, accumulation_steps", [(1, 2), (2, 1), (1, 4)])
def test_noise_measures_the_squared_norm_of_each_piece(
    files, two_cpus, replicas, accumulation_steps
):
    strategy = two_cpus if replicas == 2 else tf.distribute.get_strategy()
    noise = _train(files, strategy, accumulation_steps, steps=1).noise
    small, big = _piece_norms(files, replicas * accumulation_steps)
    np.testing.assert_allclose(noise, [small, big], rtol=float32.SUMS_RTOL)
    # Pieces of fewer sequences are noisier: this is what B_simple measures.
    assert small > 1.2 * big


def test_no_noise_is_measured_from_one_piece(one_device):
    np.testing.assert_array_equal(one_device.noise[0], 0.0)
    assert one_device.noise[1] > 0
