"""TensorFlow backend: one XLA-compiled update of all variables per replica.

Keras' TF optimizer updates variable by variable through
`strategy.extended.update`, one small computation each. Here the gradients are
all-reduced as Keras does, then `extended.update` is entered once: inside it
every distributed variable's `handle` resolves to the copy on the replica being
updated (or to the TPU-replicated variable), and those handles go to a single
`tf.function(jit_compile=True)` that reads, computes and writes every variable,
slot and trust ratio. It is compiled even when the caller's step is not
(`model.fit` turns `jit_compile` off under a distribution strategy).
"""

import keras
import tensorflow as tf


def update_on_each_replica(optimizer, grads, variables, learning_rate):
    variables = [v.value if isinstance(v, keras.Variable) else v for v in variables]
    grads_and_vars = optimizer._all_reduce_sum_gradients(list(zip(grads, variables)))
    tf.__internal__.distribute.interim.maybe_merge_call(
        _update_all,
        optimizer._distribution_strategy,
        optimizer,
        grads_and_vars,
        learning_rate,
    )


def _update_all(distribution, optimizer, grads_and_vars, learning_rate):
    grads, variables = zip(*grads_and_vars)
    indices = tuple(optimizer._get_variable_index(v) for v in variables)
    slots = [[s[i].value for s in optimizer._slots] for i in indices]
    ratio = optimizer._trust_ratio.value

    def update(_, grads, learning_rate):
        # Runs once per local replica; handles resolve to that replica's copy.
        step = tf.cast(optimizer.iterations + 1, tf.float32)
        _compiled(optimizer)(
            indices,
            [v.handle for v in variables],
            [[s.handle for s in ss] for ss in slots],
            ratio.handle,
            [tf.convert_to_tensor(g) for g in grads],  # IndexedSlices -> dense
            tf.cast(learning_rate, tf.float32),
            step,
        )

    distribution.extended.update(
        variables[0], update, args=(list(grads), learning_rate), group=False
    )


def _compiled(optimizer):
    if optimizer._compiled_apply is None:

        def apply(indices, handles, slot_handles, ratio_handle, grads, lr, step):
            dtypes = [optimizer._trainable_variables[i].dtype for i in indices]
            xs = [_read(h, d) for h, d in zip(handles, dtypes)]
            slots = [[_read(h, d) for h in hs] for hs, d in zip(slot_handles, dtypes)]
            new_xs, new_slots, ratios = optimizer._compute_updates(
                indices, xs, grads, slots, lr, step
            )
            old_ratios = _read(ratio_handle, tf.float32)
            for h, value in zip(handles, new_xs):
                _write(h, value)
            for hs, values in zip(slot_handles, new_slots):
                for h, value in zip(hs, values):
                    _write(h, value)
            _write(ratio_handle, optimizer._updated_ratios(old_ratios, indices, ratios))

        optimizer._compiled_apply = tf.function(
            apply, jit_compile=optimizer.jit_compile, autograph=False
        )
    return optimizer._compiled_apply


def _read(handle, dtype):
    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=tf.as_dtype(dtype))


def _write(handle, value):
    tf.raw_ops.AssignVariableOp(resource=handle, value=value)
