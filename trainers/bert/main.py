"""Pretrain BERT with the paper's mixed-batch LAMB schedule.

    python -m trainers.bert.main --gin_file=gin_configs/tiny_cpu.gin --model_dir=/tmp/bert_tiny
    python -m trainers.bert.main --gin_file=gin_configs/bert_large_tpu_pod.gin \\
        --model_dir=gs://bucket/run --tpu=local
    KERAS_BACKEND=jax python -m trainers.bert.main --engine=jax \\
        --gin_file=gin_configs/tiny_cpu.gin --model_dir=/tmp/bert_tiny_jax

Parses the flags and gin files, picks the engine and what it runs on (a
tf.distribute strategy, or every JAX device of the processes started
together), then calls `trainers.bert.train.train`, which writes the flags
beside the checkpoints once every check has passed. Errors are one line
(`cli`): exit status 2 for a configuration, 1 for data or a runtime failure;
a preempted run (SIGTERM, Ctrl-C) exits 128 + the signal after its
checkpoint.
"""

import sys

from trainers import stack

stack.check_trainer()  # TensorFlow (the input is read through tf.data), gin, keras-hub...

from absl import app, flags, logging  # noqa: E402

from trainers.bert import cli, engines  # noqa: E402
from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.engines.tf_engine import strategies  # noqa: E402
from trainers.bert.errors import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. 'train.steps_per_loop = 100'.")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs and the exported encoder.")
flags.DEFINE_string("tpu", None, "TPU name or address; 'local' on a TPU VM or in Colab.")
flags.DEFINE_enum(
    "strategy",
    "auto",
    list(strategies.STRATEGIES),
    "tf.distribute strategy; auto: TPU with --tpu, multi-worker with TF_CONFIG, "
    "mirrored on several GPUs, else one device; tpu_rehearsal: the trainer's TPU branches on "
    "2 logical CPUs (checks a TPU configuration without a TPU).",
)
flags.DEFINE_enum(
    "engine",
    None,
    list(engines.ENGINES),
    "tf: tf.distribute (the --strategy flags); jax: Keras' JAX backend on every JAX device "
    "(KERAS_BACKEND=jax). Default: the engine of Keras' backend.",
)
flags.DEFINE_string(
    "coordinator_address",
    None,
    "--engine=jax on several processes: host:port of process 0, or 'auto' where JAX finds "
    "the cluster (Cloud TPU pods, SLURM).",
)
flags.DEFINE_integer("num_processes", None, "--engine=jax: processes of the run.")
flags.DEFINE_integer("process_id", None, "--engine=jax: this process's index.")
flags.mark_flag_as_required("model_dir")

JAX_FLAGS = ("coordinator_address", "num_processes", "process_id")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
    cli.parse_gin(FLAGS.gin_file, FLAGS.gin_param)
    engine = FLAGS.engine or engines.of_backend()
    engines.check(engine)
    strategy = _start(engine)
    summary = train_lib.train(
        FLAGS.model_dir, strategy=strategy, engine=engine, flags_text=FLAGS.flags_into_string()
    )
    if summary["preempted"]:
        sys.exit(summary["exit_status"])


def _start(engine):
    """The tf.distribute strategy (tf), or None once this process has joined
    the others (jax)."""
    if engine == "tf":
        given = [f"--{name}" for name in JAX_FLAGS if FLAGS[name].present]
        if given:
            raise ConfigError(f"{', '.join(given)}: for --engine=jax only")
        return strategies.make_strategy(FLAGS.strategy, FLAGS.tpu)
    if FLAGS.tpu or FLAGS.strategy != "auto":
        raise ConfigError(
            "--tpu and --strategy choose tf.distribute's devices: --engine=jax runs on every "
            "JAX device (TPUs included) without them"
        )
    from trainers.bert.engines.jax_engine import devices

    devices.start(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    return None


def run():
    cli.run(main, name="bert-pretrain")


if __name__ == "__main__":
    run()
