"""TensorFlow backend: one XLA-compiled update of all variables per replica.

Keras' TF optimizer updates variable by variable through
`strategy.extended.update`, one small computation each. Here the gradients are
all-reduced as Keras does, then `extended.update` is entered once: inside it
every distributed variable's `handle` resolves to the copy on the replica being
updated (or to the TPU-replicated variable), and those handles go to a single
`tf.function(jit_compile=True)` that reads, computes and writes every variable,
slot and trust ratio. It is compiled even when the caller's step is not
(`model.fit` turns `jit_compile` off under a distribution strategy). Handles
are arguments, never captured, so one trace serves every replica.

The optimizer passes in everything used here; this module knows nothing of
its internals.

TensorFlow's TPU build (`tensorflow-tpu`) compiles XLA for TPUs only: on its
CPU a `jit_compile` function fails ("could not find registered transfer
manager for platform Host"). There the update runs as a plain graph off TPU;
on a TPU the whole step is XLA-compiled either way.
"""

import functools
import importlib.metadata

import keras
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as tf2xla

from lamb_tf.access import Access, no_barrier

TPU_BUILDS = ("tensorflow-tpu", "tf-nightly-tpu")


def compile_apply(apply_layerwise, jit_compile, strategy=None):
    """`apply_layerwise(indices, grads, refs, access, learning_rate, step)`
    as one `tf.function` over resource handles (the optimizer keeps it)."""
    jit_compile = jit_compile and xla_compiles_under(strategy)
    access = Access(read=_read, write=_write, barrier=_xla_barrier if jit_compile else no_barrier)

    def apply(indices, grads, handles, learning_rate, step):
        apply_layerwise(indices, grads, handles, access, learning_rate, step)

    return tf.function(apply, jit_compile=jit_compile, autograph=False)


def xla_compiles_under(strategy=None):
    """Whether `tf.function(jit_compile=True)` runs where `strategy` (None:
    the current one) places its computations."""
    if not _tpu_build():
        return True
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.TPUStrategy)


@functools.cache
def _tpu_build():
    return any(_installed(name) for name in TPU_BUILDS)


def _installed(distribution):
    try:
        return importlib.metadata.version(distribution) is not None
    except importlib.metadata.PackageNotFoundError:
        return False


def update_on_each_replica(
    strategy, all_reduce_sum, grads, variables, indices, refs, compiled, learning_rate, iterations
):
    """Sums the gradients over the replicas (Keras' `all_reduce_sum`) unless
    already in cross-replica context, then runs `compiled` once per replica.

    `refs`: per variable (variable, its slots...), then the trust-ratio
    vector, as Keras variables; `iterations`: the optimizer's count of
    updates done (t - 1). Everything passed to `merge_call` is the same
    object on every replica, so it is not regrouped."""
    variables = [_tf_variable(v) for v in variables]
    update = (indices, refs, compiled, learning_rate, iterations)
    if tf.distribute.in_cross_replica_context():
        # Called with gradients already summed over the replicas (a custom
        # step that all-reduces and clips them itself, then `merge_call`s).
        _update_all(strategy, list(zip(grads, variables)), *update)
        return
    grads_and_vars = all_reduce_sum(list(zip(grads, variables)))
    tf.__internal__.distribute.interim.maybe_merge_call(
        _update_all, strategy, grads_and_vars, *update
    )


def _update_all(distribution, grads_and_vars, indices, refs, compiled, learning_rate, iterations):
    grads, variables = zip(*grads_and_vars)
    # Keras variables -> tf.Variables (distributed ones where a strategy is on).
    refs = [tuple(_tf_variable(r) for r in group) for group in refs[:-1]] + [_tf_variable(refs[-1])]

    def update(_, grads, learning_rate):
        # Runs once per local replica; handles resolve to that replica's copy.
        handles = [tuple(r.handle for r in group) for group in refs[:-1]] + [refs[-1].handle]
        compiled(
            indices,
            [tf.convert_to_tensor(g) for g in grads],  # IndexedSlices -> dense
            handles,
            tf.cast(learning_rate, tf.float32),
            tf.cast(iterations + 1, tf.float32),  # t of the paper, from 1
        )

    distribution.extended.update(
        variables[0], update, args=(list(grads), learning_rate), group=False
    )


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _read(handle, dtype):
    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=tf.as_dtype(dtype))


def _write(handle, value):
    tf.raw_ops.AssignVariableOp(resource=handle, value=value)


def _xla_barrier(values):
    # XLA's OptimizationBarrier; TensorFlow exposes it only here (jax2tf uses it too).
    flat = tf.nest.flatten(values)
    return tf.nest.pack_sequence_as(values, list(tf2xla.optimization_barrier(*flat)))
