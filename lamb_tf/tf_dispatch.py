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
"""

import keras
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as tf2xla

from lamb_tf.layerwise import Access, no_barrier


def update_on_each_replica(optimizer, grads, variables, learning_rate):
    variables = [_tf_variable(v) for v in variables]
    strategy = optimizer._distribution_strategy
    if tf.distribute.in_cross_replica_context():
        # Called with gradients already summed over the replicas (a custom
        # step that all-reduces and clips them itself, then `merge_call`s).
        _update_all(strategy, optimizer, list(zip(grads, variables)), learning_rate)
        return
    grads_and_vars = optimizer._all_reduce_sum_gradients(list(zip(grads, variables)))
    tf.__internal__.distribute.interim.maybe_merge_call(
        _update_all, strategy, optimizer, grads_and_vars, learning_rate
    )


def _update_all(distribution, optimizer, grads_and_vars, learning_rate):
    grads, variables = zip(*grads_and_vars)
    indices, refs = optimizer._references(variables)
    # Keras variables -> tf.Variables (distributed ones where a strategy is on).
    refs = [tuple(_tf_variable(r) for r in group) for group in refs[:-1]] + [_tf_variable(refs[-1])]

    def update(_, grads, learning_rate):
        # Runs once per local replica; handles resolve to that replica's copy.
        handles = [tuple(r.handle for r in group) for group in refs[:-1]] + [refs[-1].handle]
        _compiled(optimizer)(
            indices,
            [tf.convert_to_tensor(g) for g in grads],  # IndexedSlices -> dense
            handles,
            tf.cast(learning_rate, tf.float32),
            tf.cast(optimizer.iterations + 1, tf.float32),
        )

    distribution.extended.update(
        variables[0], update, args=(list(grads), learning_rate), group=False
    )


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _compiled(optimizer):
    if optimizer._compiled_apply is None:
        access = Access(
            read=_read,
            write=_write,
            barrier=_xla_barrier if optimizer.jit_compile else no_barrier,
        )

        def apply(indices, grads, handles, learning_rate, step):
            optimizer._apply_layerwise(indices, grads, handles, access, learning_rate, step)

        optimizer._compiled_apply = tf.function(
            apply, jit_compile=optimizer.jit_compile, autograph=False
        )
    return optimizer._compiled_apply


def _read(handle, dtype):
    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=tf.as_dtype(dtype))


def _write(handle, value):
    tf.raw_ops.AssignVariableOp(resource=handle, value=value)


def _xla_barrier(values):
    # XLA's OptimizationBarrier; TensorFlow exposes it only here (jax2tf uses it too).
    flat = tf.nest.flatten(values)
    return tf.nest.pack_sequence_as(values, list(tf2xla.optimization_barrier(*flat)))
