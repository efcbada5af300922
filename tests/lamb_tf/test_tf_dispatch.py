"""The same numbers from every TensorFlow route: eager and XLA, `model.fit`
and a custom loop, one device and `MirroredStrategy` over two logical CPUs,
mixed precision and loss scaling."""

import keras
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from lamb_tf import tf_dispatch
from tests import float32
from tests.lamb_tf import models, numpy_reference, problem

EPOCHS = 5


def _fit(jit_compile=True, model_jit=False, strategy=None, optimizer_cls=lamb_tf.LAMB, eager=False):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = models.make_model()
        model.compile(
            optimizer=optimizer_cls(jit_compile=jit_compile, **models.lamb_kwargs()),
            loss="mse",
            jit_compile=model_jit,
            run_eagerly=eager,
        )
    x, y = models.make_data()
    history = model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0)
    return model, history


def _custom_loop(jit_compile=True):
    model = models.make_model()
    optimizer = lamb_tf.LAMB(jit_compile=jit_compile, **models.lamb_kwargs())
    x, y = models.make_data()
    loss_fn = keras.losses.MeanSquaredError()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for _ in range(EPOCHS):
        train_step(x, y)
    return model


@pytest.fixture(scope="module")
def reference():
    """The weights before and after `_fit` with its defaults (the
    optimizer's XLA function, the step in a graph, one device)."""
    initial = models.weights(models.make_model())
    model, history = _fit()
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    return initial, models.weights(model)


def _assert_same_run(reference, model):
    # Each route computes the same sums, but XLA's fusions, eager kernels,
    # another graph's rewrites or a second replica may add them in another
    # order: float32 rounding only (tests/float32.py), relative to how far
    # the weights moved. One step fewer or a doubled learning rate misses
    # by 200 to 1000 times that.
    initial, expected = reference
    float32.assert_same_weights(initial, expected, models.weights(model))


def test_optimizer_xla_and_graph_agree(reference):
    model, _ = _fit(jit_compile=False)
    _assert_same_run(reference, model)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_eager_train_step(reference, jit_compile):
    model, _ = _fit(jit_compile=jit_compile, eager=True)
    _assert_same_run(reference, model)


@pytest.mark.skipif(
    not tf_dispatch.xla_compiles_under(),
    reason="TensorFlow's TPU build (tensorflow-tpu) cannot XLA-compile for the CPU",
)
def test_inside_a_jit_compiled_train_step(reference):
    model, _ = _fit(model_jit=True)
    _assert_same_run(reference, model)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_custom_loop_matches_fit(reference, jit_compile):
    _assert_same_run(reference, _custom_loop(jit_compile))


def test_mirrored_two_devices_matches_one_device(reference, two_cpus):
    model, _ = _fit(strategy=two_cpus)
    _assert_same_run(reference, model)
    # Every replica applies the same all-reduced gradients with the same
    # function: their copies are identical, not merely close.
    for variable in model.trainable_variables + model.optimizer.variables:
        copies = model.optimizer._distribution_strategy.experimental_local_results(variable.value)
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0].numpy(), copies[1].numpy())


def test_mirrored_one_device_matches(reference):
    model, _ = _fit(strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    _assert_same_run(reference, model)


def test_lars_under_mirrored_strategy_matches_one_device(two_cpus):
    initial = models.weights(models.make_model())
    single, _ = _fit(optimizer_cls=lamb_tf.LARS)
    mirrored, _ = _fit(strategy=two_cpus, optimizer_cls=lamb_tf.LARS)
    float32.assert_same_weights(initial, models.weights(single), models.weights(mirrored))


def _round_to_bfloat16(values):
    return np.asarray(values, np.float64).astype(ml_dtypes.bfloat16).astype(np.float64)


def _exact(values):
    return np.asarray(values, np.float64)


def _lamb(x0, grad_steps, lr, arithmetic, storage, b1=0.9, b2=0.999, eps=1e-6):
    """The paper's LAMB (no weight decay) on one variable, with the result
    of every operation rounded by `arithmetic` and the variable and its
    moments kept between steps as `storage` keeps them. With both exact it
    is `numpy_reference.lamb`. The hyperparameters and bias corrections are
    computed exactly, then rounded: the most favourable low-precision form."""
    r = arithmetic
    x, m, v = storage(x0), np.zeros(np.shape(x0)), np.zeros(np.shape(x0))
    for t, g in enumerate(grad_steps, start=1):
        g = _exact(g)
        m = r(r(r(b1) * m) + r(r(1 - b1) * g))
        v = r(r(r(b2) * v) + r(r(1 - b2) * r(g * g)))
        u = r(r(m / r(1 - b1**t)) / r(r(np.sqrt(r(v / r(1 - b2**t)))) + r(eps)))
        ratio = r(r(np.sqrt(r(np.sum(r(x * x))))) / r(np.sqrt(r(np.sum(r(u * u))))))
        x = storage(r(x - r(r(r(lr) * ratio) * u)))
        m, v = storage(m), storage(v)
    return x


def test_mixed_bfloat16_keeps_float32_slots_and_reference_numbers():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.make_model()
        assert model.get_layer("dense").compute_dtype == "bfloat16"
        model.compile(optimizer=lamb_tf.LAMB(**models.lamb_kwargs()), loss="mse")
        x, y = models.make_data()
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        assert all(v.dtype == "float32" for v in model.optimizer.variables[2:])
        # Still under the policy: given float32 gradients, the update of the
        # model's float32 variables is the reference update.
        variables = model.trainable_variables
        assert all(v.dtype == "float32" for v in variables)
        x0 = problem.initial_values(variables)
        grad_steps = problem.gradient_steps(variables, steps=3)
        got = problem.run(lamb_tf.LAMB(learning_rate=0.01), variables, grad_steps)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)
    # An update computed in the policy's bfloat16 (each operation rounded to
    # its 8 bits) misses by far more: 2^-8 of a step of 1% of a weight is
    # already 20 times the tolerance.
    in_bfloat16 = [
        _lamb(x, [gs[i] for gs in grad_steps], 0.01, _round_to_bfloat16, _exact)
        for i, x in enumerate(x0)
    ]
    assert problem.max_error(in_bfloat16, want) > 10 * problem.ATOL


def test_bfloat16_variables_compute_in_float32():
    # Weights either side of zero, gradients over three decades and steps of
    # about a tenth of a weight: some steps nearly cancel a weight, where
    # bfloat16 arithmetic, 2^-8 of the step, is many spacings of the result.
    rng = np.random.default_rng(0)
    n, lr = 1024, 0.2
    x0 = _round_to_bfloat16(np.linspace(-1.0, 1.0, n))
    grad_steps = [
        _round_to_bfloat16(rng.normal(size=n) * np.exp(rng.uniform(-7.0, 0.0, n))) for _ in range(3)
    ]
    var = keras.Variable(x0, dtype="bfloat16")
    optimizer = lamb_tf.LAMB(learning_rate=lr)
    for g in grad_steps:
        optimizer.apply_gradients([(tf.constant(g, tf.bfloat16), var)])
    assert var.dtype == "bfloat16"
    got = np.array(var.numpy(), np.float64)
    # Next to bfloat16's spacing float32 arithmetic is exact: the reference
    # is the same steps in float64, the weights and moments rounded to
    # bfloat16 after each step as the optimizer stores them. The two differ
    # where float32's rounding (a few operations, 2^-24 of the weights
    # each: atol) puts a value on the other side of a bfloat16 rounding
    # midpoint: by one spacing, at most 2^-7 of the value (rtol).
    (reference,), _ = numpy_reference.lamb([x0], [[g] for g in grad_steps], lr=lr)
    np.testing.assert_allclose(_lamb(x0, grad_steps, lr, _exact, _exact), reference, atol=1e-12)
    want = _lamb(x0, grad_steps, lr, _exact, _round_to_bfloat16)
    rtol, atol = 2.0**-7, 16 * 2.0**-24 * float(np.abs(x0).max())
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    # Every operation in bfloat16, even with exact hyperparameters, misses
    # by more than ten times that tolerance.
    in_bfloat16 = _lamb(x0, grad_steps, lr, _round_to_bfloat16, _round_to_bfloat16)
    assert np.max(np.abs(in_bfloat16 - want) / (rtol * np.abs(want) + atol)) > 10


def test_loss_scale_optimizer_float16():
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=5)
    optimizer = keras.optimizers.LossScaleOptimizer(
        lamb_tf.LAMB(learning_rate=0.01, weight_decay=0.1), initial_scale=1024.0
    )
    for grads in grad_steps:
        scaled = [tf.constant(g * 1024.0, tf.float16) for g in grads]
        optimizer.apply_gradients(zip([tf.cast(g, tf.float32) for g in scaled], variables))
    got = [np.array(v.numpy(), np.float64) for v in variables]
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01, wd=0.1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4)  # float16 gradients

    # A non-finite gradient skips the step and halves the scale.
    before = [v.numpy().copy() for v in variables]
    bad = [tf.fill(v.shape, np.inf) for v in variables]
    optimizer.apply_gradients(zip(bad, variables))
    for b, v in zip(before, variables):
        np.testing.assert_array_equal(b, v.numpy())
    assert float(optimizer.dynamic_scale.numpy()) == 512.0


def test_sparse_embedding_gradients_are_densified():
    keras.utils.set_random_seed(0)
    embedding = keras.layers.Embedding(10, 4, name="embedding")
    embedding.build((None,))
    optimizer = lamb_tf.LAMB(learning_rate=0.01)
    ids = tf.constant([1, 3])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(embedding(ids) ** 2)
    grads = tape.gradient(loss, embedding.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    before = embedding.embeddings.numpy().copy()
    optimizer.apply_gradients(zip(grads, embedding.trainable_variables))
    changed = np.any(before != embedding.embeddings.numpy(), axis=1)
    assert changed.tolist() == [i in (1, 3) for i in range(10)]
