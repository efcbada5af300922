"""The engine of a run: `tf` (tf.distribute, `tf_engine`) or `jax` (Keras'
JAX backend, `jax_engine`). Both run the same loop, gin files and
`model_dir` layout; each reads the training records through `tf.data`.

Keras' backend is fixed when Keras is first imported (`KERAS_BACKEND`), so
the engine must match it; every mismatch stops before any compute.
"""

import keras

from trainers import stack
from trainers.bert.errors import ConfigError

ENGINES = ("tf", "jax")
BACKENDS = {"tf": "tensorflow", "jax": "jax"}

if keras.backend.backend() == "jax" and not stack.missing("jax"):
    # Before anything starts JAX's devices (`devices.dispatch_on_calling_thread`).
    from trainers.bert.engines.jax_engine import devices as _jax_devices

    _jax_devices.dispatch_on_calling_thread()


def of_backend():
    """The engine of Keras' backend (the default of `--engine`)."""
    backend = keras.backend.backend()
    for engine, name in BACKENDS.items():
        if name == backend:
            return engine
    raise ConfigError(
        f"KERAS_BACKEND={backend!r}: the trainer runs on 'tensorflow' (--engine=tf) or 'jax' "
        "(--engine=jax)"
    )


def check(engine, strategy=None):
    """`engine` is one of ENGINES, runs on Keras' backend and, for `jax`,
    has no tf.distribute strategy."""
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r}: choose one of {', '.join(ENGINES)}")
    backend = keras.backend.backend()
    if BACKENDS[engine] != backend:
        raise ConfigError(
            f"--engine={engine} runs on Keras' {BACKENDS[engine]} backend, and Keras runs on "
            f"{backend}: set KERAS_BACKEND={BACKENDS[engine]} (or --engine={of_backend()})"
        )
    if engine == "jax":
        stack.require_jax_engine("--engine=jax")
    if engine == "jax" and strategy is not None:
        raise ConfigError(
            "--engine=jax uses every JAX device itself: a tf.distribute strategy "
            f"({type(strategy).__name__}) cannot be given"
        )


def check_precision(engine, precision):
    """The JAX engine has no loss scale, which float16 needs."""
    if engine == "jax" and precision == "mixed_float16":
        raise ConfigError(
            'train.precision="mixed_float16" is not supported by the JAX engine: use '
            '"mixed_bfloat16" (no loss scale needed)'
        )


def placement(engine, strategy=None):
    """(what the engine runs on, its number of replicas): a tf.distribute
    strategy (default: the default one) or `jax_engine.devices.Devices`."""
    if engine == "jax":
        import tensorflow as tf

        from trainers.bert.engines.jax_engine import devices

        # TensorFlow only reads the input here: the accelerators are JAX's.
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow's devices already started: left as they are
            pass
        found = devices.Devices()
        return found, found.count
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    return strategy, strategy.num_replicas_in_sync


def make(engine, where, plans, input_pipelines=None, **kwargs):
    """The engine `engine` on `where` (from `placement`), its number of
    input pipelines checked against `plans`; `kwargs` are the engines'
    common arguments (config, optimizer, schedule, precision, model_dir,
    keep_checkpoints, clip_norm, noise_scale) and `jit_compile` (TensorFlow's)."""
    if engine == "jax":
        from trainers.bert.engines.jax_engine import engine as jax_engine

        kwargs.pop("jit_compile")  # JAX always compiles
        pipelines = jax_engine.input_pipelines(where, input_pipelines, plans)
        return jax_engine.JaxEngine(where, input_pipelines=pipelines, **kwargs)
    from trainers.bert.engines.tf_engine import engine as tf_engine

    pipelines = tf_engine.input_pipelines(where, input_pipelines, plans)
    return tf_engine.TFEngine(where, input_pipelines=pipelines, **kwargs)
