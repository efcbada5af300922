"""Model FLOPs of a BERT pretraining step and the machine's measured peak,
for model FLOPs utilisation (MFU)."""

import time


def training_flops_per_sequence(config, seq_length, max_predictions):
    """Multiply-adds x 2 of the forward pass, x 3 for forward and backward
    (the usual count: matmuls only, attention included)."""
    h, ff, L = config.hidden_dim, config.intermediate_dim, seq_length
    per_layer = 2 * L * (4 * h * h + 2 * h * ff) + 2 * 2 * L * L * h
    head = 2 * max_predictions * (h * h + h * config.vocabulary_size) + 2 * h * h
    return 3 * (config.num_layers * per_layer + head)


def measure_peak_flops(dtype="float32", size=None, seconds=1.0):
    """FLOP/s of an XLA-compiled square matmul on the default device
    (CPU or GPU) under TensorFlow, best of repeated runs for about
    `seconds`."""
    import tensorflow as tf

    from lamb_tf import tf_dispatch

    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    size = size or (8192 if on_gpu else 1024)
    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    # The whole product is returned, so XLA cannot simplify it away.
    matmul = tf.function(tf.matmul, jit_compile=tf_dispatch.xla_compiles_under())
    matmul(a, a)[0, 0].numpy()
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        matmul(a, a)[0, 0].numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
