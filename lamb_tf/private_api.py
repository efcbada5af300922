"""Every private Keras and TensorFlow name this package relies on, and why.

Keras and TensorFlow may rename these in any release; setup.py admits only
the versions the tests ran on, and `tests/lamb_tf/test_private_api.py`
checks each name below, so an upgrade that moves one fails in one place.
"""

# On every Keras optimizer (keras.optimizers.Optimizer), after `build`.
OPTIMIZER = {
    "_backend_update_step": "overridden: Keras' `apply` hands it every gradient at once, "
    "so the whole update can be one compiled function",
    "_apply_weight_decay": "overridden as a no-op: the paper's weight decay is inside the "
    "update direction, never Keras' decoupled decay",
    "_use_weight_decay": "honours a user's `exclude_from_weight_decay(...)` call on the optimizer",
    "_trainable_variables": "the optimizer's variable order, which slots and trust ratios follow",
    "_get_variable_index": "a variable's position in that order",
}

# On the TensorFlow backend's optimizer only.
TF_OPTIMIZER = {
    "_distribution_strategy": "the strategy whose replicas are updated",
    "_all_reduce_sum_gradients": "sums gradients over replicas exactly as Keras does",
}

# TensorFlow functions outside its public API: (module path, attribute).
TENSORFLOW = {
    ("tensorflow.__internal__.distribute.interim", "maybe_merge_call"): (
        "enters cross-replica context the way Keras' own TF optimizer does"
    ),
    ("tensorflow.compiler.tf2xla.python.xla", "optimization_barrier"): (
        "XLA's OptimizationBarrier; TensorFlow exposes it nowhere else (jax2tf uses it too)"
    ),
}
