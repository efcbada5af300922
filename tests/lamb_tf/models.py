"""A small regression model and data, the same for every training route."""

import keras
import numpy as np


def make_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="tanh", name="dense")(inputs)
    x = keras.layers.LayerNormalization(name="layer_norm")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs)


def make_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, :1] * 2.0 - x[:, 1:2] + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def lamb_kwargs():
    return dict(
        learning_rate=0.01,
        weight_decay=0.05,
        exclude_from_weight_decay=["layer_norm", "bias"],
    )


def weights(model):
    return [np.array(w, np.float64) for w in model.get_weights()]
