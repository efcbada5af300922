"""How an update reaches a backend's state inside its computation: read,
write and the optimization barrier. A leaf: `layerwise` and `tf_dispatch`
both depend on it, it depends on neither."""

from collections.abc import Callable
from typing import NamedTuple

import keras


class Access(NamedTuple):
    read: Callable  # (reference, dtype) -> tensor
    write: Callable  # (reference, value) -> None
    barrier: Callable  # nested tensors -> the same values, opaque to the compiler


def no_barrier(values):
    """Where no compiler runs, there is nothing to keep apart."""
    return values


def keras_variables(assign):
    """Access to Keras variables on the active backend, written with the
    optimizer's `assign` (JAX: inside the surrounding jitted step, whose
    compiler the barrier speaks to)."""
    barrier = no_barrier
    if keras.backend.backend() == "jax":
        import jax

        barrier = jax.lax.optimization_barrier
    return Access(read=lambda variable, dtype: variable.value, write=assign, barrier=barrier)
