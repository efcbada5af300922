"""The same numbers from every TensorFlow route: eager and XLA, `model.fit`
and a custom loop, one device and `MirroredStrategy` over two logical CPUs,
mixed precision and loss scaling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from lamb_tf import tf_dispatch
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
def reference_weights():
    model, history = _fit()
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    return models.weights(model)


def test_optimizer_xla_and_graph_agree(reference_weights):
    model, _ = _fit(jit_compile=False)
    models.assert_same_weights(models.weights(model), reference_weights)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_eager_train_step(reference_weights, jit_compile):
    model, _ = _fit(jit_compile=jit_compile, eager=True)
    models.assert_same_weights(models.weights(model), reference_weights)


@pytest.mark.skipif(
    not tf_dispatch.xla_compiles_under(),
    reason="TensorFlow's TPU build (tensorflow-tpu) cannot XLA-compile for the CPU",
)
def test_inside_a_jit_compiled_train_step(reference_weights):
    model, _ = _fit(model_jit=True)
    models.assert_same_weights(models.weights(model), reference_weights)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_custom_loop_matches_fit(reference_weights, jit_compile):
    model = _custom_loop(jit_compile)
    models.assert_same_weights(models.weights(model), reference_weights)


def test_mirrored_two_devices_matches_one_device(reference_weights, two_cpus):
    model, _ = _fit(strategy=two_cpus)
    models.assert_same_weights(models.weights(model), reference_weights)
    # Every replica holds the same weights and slots.
    for variable in model.trainable_variables + model.optimizer.variables:
        copies = model.optimizer._distribution_strategy.experimental_local_results(variable.value)
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0].numpy(), copies[1].numpy())


def test_mirrored_one_device_matches(reference_weights):
    model, _ = _fit(strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    models.assert_same_weights(models.weights(model), reference_weights)


def test_lars_under_mirrored_strategy_matches_one_device(two_cpus):
    single, _ = _fit(optimizer_cls=lamb_tf.LARS)
    mirrored, _ = _fit(strategy=two_cpus, optimizer_cls=lamb_tf.LARS)
    models.assert_same_weights(models.weights(mirrored), models.weights(single))


def test_mixed_bfloat16_keeps_float32_slots_and_reference_numbers():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.make_model()
        model.compile(optimizer=lamb_tf.LAMB(**models.lamb_kwargs()), loss="mse")
        x, y = models.make_data()
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(v.dtype == "float32" for v in model.optimizer.variables[2:])
    # Given the same float32 gradients, the update is the reference update.
    variables = [v for v in model.trainable_variables if v.path == "dense/kernel"]
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=3)
    optimizer = lamb_tf.LAMB(learning_rate=0.01)
    got = problem.run(optimizer, variables, grad_steps)
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01)
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=problem.ATOL)


def test_bfloat16_variables_compute_in_float32():
    var = keras.Variable(np.linspace(0.5, 2.0, 64), dtype="bfloat16")
    x0 = [np.array(var.numpy(), np.float64)]
    grad_steps = [[np.full(64, 0.1, "float32")] for _ in range(3)]
    optimizer = lamb_tf.LAMB(learning_rate=0.01)
    for grads in grad_steps:
        optimizer.apply_gradients([(tf.constant(grads[0], tf.bfloat16), var)])
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01)
    assert var.dtype == "bfloat16"
    np.testing.assert_allclose(np.array(var.numpy(), np.float64), want[0], rtol=1e-2)


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
