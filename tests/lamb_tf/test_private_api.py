"""The private Keras and TensorFlow names listed in `lamb_tf.private_api`
still exist: a Keras or TensorFlow upgrade that moves one fails here."""

import functools
import importlib

import keras
import pytest
import tensorflow as tf

from lamb_tf import private_api


@functools.cache
def _built_keras_optimizer():
    optimizer = keras.optimizers.Adam()
    optimizer.build([keras.Variable([1.0, 2.0])])
    return optimizer


@pytest.mark.parametrize("name", sorted({**private_api.OPTIMIZER, **private_api.TF_OPTIMIZER}))
def test_keras_optimizer_has(name):
    assert keras.backend.backend() == "tensorflow"
    assert hasattr(_built_keras_optimizer(), name), (
        f"Keras {keras.__version__}: optimizers lack {name} ({private_api.OPTIMIZER.get(name)})"
    )


@pytest.mark.parametrize("module, name", sorted(private_api.TENSORFLOW))
def test_tensorflow_has(module, name):
    if module.startswith("tensorflow.__internal__"):
        owner = tf.__internal__
        for part in module.split(".")[2:]:
            owner = getattr(owner, part)
    else:
        owner = importlib.import_module(module)
    assert callable(getattr(owner, name, None)), f"TensorFlow {tf.__version__}: {module}.{name}"


def test_the_overridden_methods_are_the_ones_keras_calls():
    # LayerwiseOptimizer overrides these; Keras must still define them on its
    # base class, or the override would silently never run.
    base = keras.optimizers.Optimizer
    for name in ("_backend_update_step", "_apply_weight_decay"):
        assert callable(getattr(base, name, None)), name
