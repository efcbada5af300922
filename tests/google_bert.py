"""google-research/bert's own code as an oracle: `modeling.py`,
`run_pretraining.py`'s pretraining heads, `run_squad.py` and
`tokenization.py` from the package index's `bert-tensorflow` 1.0.4 (that
repository's code), run in a graph under `tf.compat.v1`.

That code calls two TF1 functions TensorFlow 2.21 no longer has; they are
supplied here with the same variable names, order and arithmetic, and
nothing else of it is changed:
- `tf.contrib.layers.layer_norm`: variables `beta` then `gamma` under the
  scope (default "LayerNorm"), moments over the last axis, epsilon 1e-12;
- `tf.layers.dense`: `kernel` then `bias` under the scope (default
  "dense"), inputs x kernel + bias, then the activation.
Importing `run_pretraining`, `run_squad` and `tokenization` defines their
command-line flags in absl's registry (some names twice); they are removed
again, so the importing process's flags are as they were, and each module's
`FLAGS` holds its flags' defaults (a test sets what it needs there).
"""

import functools
import importlib
import sys
import types

import tensorflow as tf
from absl import flags

v1 = tf.compat.v1
LAYER_NORM_EPSILON = 1e-12  # tf.contrib.layers.layer_norm's


def _layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None, **_):
    assert begin_norm_axis == -1 and begin_params_axis == -1  # google's only use
    with v1.variable_scope(scope, default_name="LayerNorm"):
        depth = inputs.shape[-1]
        beta = v1.get_variable("beta", [depth], initializer=v1.zeros_initializer())
        gamma = v1.get_variable("gamma", [depth], initializer=v1.ones_initializer())
        mean, variance = tf.nn.moments(inputs, [-1], keepdims=True)
        return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, LAYER_NORM_EPSILON)


def _dense(inputs, units, activation=None, name=None, kernel_initializer=None):
    with v1.variable_scope(name, default_name="dense"):
        kernel = v1.get_variable(
            "kernel", [inputs.shape[-1], units], initializer=kernel_initializer
        )
        bias = v1.get_variable("bias", [units], initializer=v1.zeros_initializer())
    outputs = tf.tensordot(inputs, kernel, [[-1], [0]]) + bias
    return activation(outputs) if activation is not None else outputs


class _TF1(types.ModuleType):
    """`tensorflow.compat.v1` with `layers.dense` as TF1 had it."""

    layers = types.SimpleNamespace(dense=_dense)

    def __getattr__(self, name):
        return getattr(v1, name)


@functools.cache
def modules():
    """(modeling, run_pretraining, run_squad, tokenization) of
    google-research/bert."""
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.layers = types.SimpleNamespace(layer_norm=_layer_norm)
    before = set(flags.FLAGS)
    saved = {name: sys.modules.get(name) for name in ("tensorflow.contrib",)}
    sys.modules["tensorflow.contrib"] = contrib
    loaded = []
    try:
        for name in ("modeling", "run_pretraining", "run_squad", "tokenization"):
            module = importlib.import_module(f"bert.{name}")
            defined = set(flags.FLAGS) - before
            if defined:  # the module reads them as FLAGS.name: their defaults
                defaults = {flag: flags.FLAGS[flag].default for flag in defined}
                module.FLAGS = types.SimpleNamespace(**defaults)
            for flag in defined:  # the scripts define the same ones
                delattr(flags.FLAGS, flag)
            loaded.append(module)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    shim = _TF1("tensorflow.compat.v1 (with TF1's layers.dense)")
    for module in loaded:
        module.tf = shim
    return tuple(loaded)
