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

from trainers.bert import cli  # noqa: E402
from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.engines import launch  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. 'train.steps_per_loop = 100'.")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs and the exported encoder.")
launch.define_flags()
flags.mark_flag_as_required("model_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
    cli.parse_gin(FLAGS.gin_file, FLAGS.gin_param)
    engine, strategy = launch.start()
    summary = train_lib.train(
        FLAGS.model_dir, strategy=strategy, engine=engine, flags_text=FLAGS.flags_into_string()
    )
    if summary["preempted"]:
        sys.exit(summary["exit_status"])


def run():
    cli.run(main, name="bert-pretrain")


if __name__ == "__main__":
    run()
