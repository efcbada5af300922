"""A small optimisation problem with BERT-like variable paths and shapes:
a matrix, zero-initialised biases, LayerNorm scales and a scalar."""

import re

import keras
import numpy as np

# float32 update of O(1) weights over 30 steps: errors are ~1e-7.
ATOL = 2e-6
PATHS = ["dense/kernel", "dense/bias", "layer_norm/gamma", "layer_norm/beta", "scale/scale"]


def masks(kwargs):
    """(decays, adapts) per variable of PATHS for an optimizer's exclusion
    arguments, decided here independently of the optimizer (tfa's rule: no
    adaptation list means the weight-decay list)."""

    def excluded(patterns):
        return {i for i, path in enumerate(PATHS) if any(re.search(p, path) for p in patterns)}

    decay_out = excluded(kwargs.get("exclude_from_weight_decay", []))
    adapt_list = kwargs.get("exclude_from_layer_adaptation")
    adapt_out = decay_out if adapt_list is None else excluded(adapt_list)
    n = len(PATHS)
    return [i not in decay_out for i in range(n)], [i not in adapt_out for i in range(n)]


class _Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), name="scale", initializer="ones")


def make_variables(seed=0):
    """Keras variables with paths dense/kernel, dense/bias, layer_norm/gamma,
    layer_norm/beta, scale/scale; biases start at zero."""
    rng = np.random.default_rng(seed)
    dense = keras.layers.Dense(3, name="dense")
    dense.build((None, 4))
    norm = keras.layers.LayerNormalization(name="layer_norm")
    norm.build((None, 3))
    scale = _Scale(name="scale")
    scale.build(None)
    dense.kernel.assign(rng.normal(size=(4, 3)).astype("float32"))
    norm.gamma.assign((1.0 + 0.1 * rng.normal(size=3)).astype("float32"))
    scale.scale.assign(np.float32(0.5))
    return [dense.kernel, dense.bias, norm.gamma, norm.beta, scale.scale]


def gradient_steps(variables, steps, seed=1, scale=0.1):
    """Random gradients shaped like `variables` (anything with `.shape`)."""
    rng = np.random.default_rng(seed)
    return [
        [(scale * rng.normal(size=v.shape)).astype("float32") for v in variables]
        for _ in range(steps)
    ]


def run(optimizer, variables, grad_steps):
    for grads in grad_steps:
        optimizer.apply_gradients(zip(grads, variables))
    return [np.array(v.numpy(), np.float64) for v in variables]


def initial_values(variables):
    return [np.array(v.numpy(), np.float64) for v in variables]


def max_error(actual, expected):
    return max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected))
