"""LAMB against the paper's golden values and an independent NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from tests.lamb_tf import numpy_reference, problem

GOLDEN = {
    # (weight decay, step): (var0, var1) from ../shared/PAPER.md
    (0.0, 1): ([0.9984188612, 1.9984188612], [2.9964644661, 3.9964644661]),
    (0.0, 2): ([0.9968392223, 1.9968392223], [2.9929324322, 3.9929324322]),
    (0.0, 3): ([0.9952610817, 1.9952610817], [2.9894038946, 3.9894038946]),
    (0.01, 1): ([0.9984266692, 1.9984110915], [2.9964815887, 3.9964474260]),
    (0.01, 2): ([0.9968548333, 1.9968236928], [2.9929666627, 3.9928983713]),
    (0.01, 3): ([0.9952844909, 1.9952378022], [2.9894552187, 3.9893528322]),
}


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_golden_values(weight_decay, jit_compile):
    var0, var1 = keras.Variable([1.0, 2.0]), keras.Variable([3.0, 4.0])
    optimizer = lamb_tf.LAMB(learning_rate=1e-3, weight_decay=weight_decay, jit_compile=jit_compile)
    grads = [tf.constant([0.1, 0.1]), tf.constant([0.01, 0.01])]
    for step in (1, 2, 3):
        optimizer.apply_gradients(zip(grads, [var0, var1]))
        want0, want1 = GOLDEN[(weight_decay, step)]
        np.testing.assert_allclose(var0.numpy(), want0, rtol=0, atol=1e-6)
        np.testing.assert_allclose(var1.numpy(), want1, rtol=0, atol=1e-6)


CASES = {
    "default": {},
    "excluded": {"exclude_from_weight_decay": ["layer_norm", "bias"]},
    "adapt_all": {
        "exclude_from_weight_decay": ["layer_norm", "bias"],
        "exclude_from_layer_adaptation": [],
    },
    "adapt_separate_list": {
        "exclude_from_weight_decay": ["bias"],
        "exclude_from_layer_adaptation": ["layer_norm"],
    },
    "phi_bounds": {"phi_bounds": (1.0, 1.5)},
    "ratio_bounds": {"trust_ratio_bounds": (0.5, 2.0)},
    "no_bias_correction": {"bias_correction": False},
    "n_lamb": {"variant": "N-LAMB"},
    "nn_lamb": {"variant": "NN-LAMB"},
}


def _reference(kwargs, x0, grad_steps, lr, wd):
    decay, adapt = problem.masks(kwargs)
    return numpy_reference.lamb(
        x0,
        grad_steps,
        lr=lr,
        wd=wd,
        decay=decay,
        adapt=adapt,
        bias_correction=kwargs.get("bias_correction", True),
        phi_bounds=kwargs.get("phi_bounds"),
        ratio_bounds=kwargs.get("trust_ratio_bounds"),
        variant=kwargs.get("variant", "LAMB"),
    )


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_numpy_reference(case, jit_compile):
    kwargs = CASES[case]
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=30)
    optimizer = lamb_tf.LAMB(
        learning_rate=0.01, weight_decay=0.1, jit_compile=jit_compile, **kwargs
    )
    assert [v.path for v in variables] == problem.PATHS
    got = problem.run(optimizer, variables, grad_steps)
    want, ratios = _reference(kwargs, x0, grad_steps, lr=0.01, wd=0.1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)
    np.testing.assert_allclose(list(optimizer.trust_ratios.values()), ratios, rtol=1e-4)


def test_tolerance_tells_lamb_from_adam_and_keras_lamb():
    """The reference tolerance is far below the gap to Adam, to Keras' Lamb
    semantics, and to Keras' Lamb itself, on the same problem."""
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=30)
    want, _ = _reference({}, x0, grad_steps, lr=0.01, wd=0.1)

    adam = numpy_reference.adam(x0, grad_steps, lr=0.01)
    decoupled = numpy_reference.keras_style_lamb(x0, grad_steps, lr=0.01, wd=0.1)
    assert problem.max_error(adam, want) > 100 * problem.ATOL
    assert problem.max_error(decoupled, want) > 100 * problem.ATOL

    keras_lamb = keras.optimizers.Lamb(learning_rate=0.01, weight_decay=0.1, epsilon=1e-6)
    fresh = problem.make_variables()
    got = problem.run(keras_lamb, fresh, grad_steps)
    assert problem.max_error(got, want) > 100 * problem.ATOL


def test_trust_ratios_report_one_for_excluded_and_zero_variables():
    variables = problem.make_variables()
    optimizer = lamb_tf.LAMB(
        learning_rate=0.01, weight_decay=0.1, exclude_from_weight_decay=["layer_norm"]
    )
    problem.run(optimizer, variables, problem.gradient_steps(variables, steps=1))
    ratios = optimizer.trust_ratios
    assert set(ratios) == {v.path for v in variables}
    assert ratios["layer_norm/gamma"] == 1.0  # excluded from adaptation
    assert ratios["dense/bias"] == 1.0  # ||x|| == 0 on the first step
    assert ratios["dense/kernel"] != 1.0
    assert optimizer.trust_ratio_tensor.shape == (5,)


def test_zero_gradient_gives_ratio_one_and_no_nan():
    var = keras.Variable([1.0, 2.0])
    optimizer = lamb_tf.LAMB(learning_rate=0.1)
    optimizer.apply_gradients([(tf.zeros(2), var)])
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    assert list(optimizer.trust_ratios.values()) == [1.0]


def test_equals_keras_lamb_without_weight_decay():
    """The migration claim (docs/migrating.md): with no weight decay and the same
    epsilon, Keras' Lamb and this LAMB are the same algorithm."""
    grad_steps = problem.gradient_steps(problem.make_variables(), steps=30)
    ours = problem.run(lamb_tf.LAMB(learning_rate=0.01), problem.make_variables(), grad_steps)
    theirs = problem.run(
        keras.optimizers.Lamb(learning_rate=0.01, epsilon=1e-6),
        problem.make_variables(),
        grad_steps,
    )
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=problem.ATOL)
