"""The command-line flags that choose a job's engine and its devices, shared
by the pretraining and fine-tuning commands, and the start of those devices:
a tf.distribute strategy, or this process joined to the JAX run's others."""

from absl import flags

from trainers.bert import engines
from trainers.bert.engines.tf_engine import strategies
from trainers.bert.errors import ConfigError

JAX_FLAGS = ("coordinator_address", "num_processes", "process_id")


def define_flags():
    flags.DEFINE_string("tpu", None, "TPU name or address; 'local' on a TPU VM or in Colab.")
    flags.DEFINE_enum(
        "strategy",
        "auto",
        list(strategies.STRATEGIES),
        "tf.distribute strategy; auto: TPU with --tpu, multi-worker with TF_CONFIG, "
        "mirrored on several GPUs, else one device; tpu_rehearsal: the trainer's TPU branches "
        "on 2 logical CPUs (checks a TPU configuration without a TPU).",
    )
    flags.DEFINE_enum(
        "engine",
        None,
        list(engines.ENGINES),
        "tf: tf.distribute (the --strategy flags); jax: Keras' JAX backend on every JAX "
        "device (KERAS_BACKEND=jax). Default: the engine of Keras' backend.",
    )
    flags.DEFINE_string(
        "coordinator_address",
        None,
        "--engine=jax on several processes: host:port of process 0, or 'auto' where JAX finds "
        "the cluster (Cloud TPU pods, SLURM).",
    )
    flags.DEFINE_integer("num_processes", None, "--engine=jax: processes of the run.")
    flags.DEFINE_integer("process_id", None, "--engine=jax: this process's index.")


def start(values=flags.FLAGS):
    """(the engine, its tf.distribute strategy or None once this process has
    joined the others for jax), from the parsed flags; every mismatch of
    engine, Keras backend and devices stops before any compute."""
    engine = values.engine or engines.of_backend()
    engines.check(engine)
    if engine == "tf":
        given = [f"--{name}" for name in JAX_FLAGS if values[name].present]
        if given:
            raise ConfigError(f"{', '.join(given)}: for --engine=jax only")
        return engine, strategies.make_strategy(values.strategy, values.tpu)
    if values.tpu or values.strategy != "auto":
        raise ConfigError(
            "--tpu and --strategy choose tf.distribute's devices: --engine=jax runs on every "
            "JAX device (TPUs included) without them"
        )
    from trainers.bert.engines.jax_engine import devices

    devices.start(values.coordinator_address, values.num_processes, values.process_id)
    return engine, None
