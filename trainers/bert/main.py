"""Pretrain BERT with the paper's mixed-batch LAMB schedule.

    python -m trainers.bert.main --gin_file=gin_configs/tiny_cpu.gin --model_dir=/tmp/bert_tiny
    python -m trainers.bert.main --gin_file=gin_configs/bert_large_tpu_pod.gin \\
        --model_dir=gs://bucket/run --tpu=local

Parses the flags and gin files, picks the tf.distribute strategy, then calls
`trainers.bert.train.train`, which writes the flags beside the checkpoints once
every check has passed. Errors are one line (`cli`): exit status 2 for a
configuration, 1 for data or a runtime failure; a preempted run (SIGTERM,
Ctrl-C) exits 128 + the signal after its checkpoint.
"""

import os
import sys

import gin
from absl import app, flags, logging

from trainers.bert import cli
from trainers.bert import train as train_lib
from trainers.bert.errors import ConfigError
from trainers.bert.tf_engine import strategies

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
flags.mark_flag_as_required("model_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
    for path in FLAGS.gin_file:
        if not os.path.exists(path):
            raise ConfigError(f"--gin_file={path} does not exist")
    try:
        gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_param)
    except (ValueError, SyntaxError, ImportError) as error:
        raise ConfigError(f"gin: {error}") from None
    strategy = strategies.make_strategy(FLAGS.strategy, FLAGS.tpu)
    summary = train_lib.train(
        FLAGS.model_dir, strategy=strategy, flags_text=FLAGS.flags_into_string()
    )
    if summary["preempted"]:
        sys.exit(summary["exit_status"])


def run():
    cli.run(main, name="bert-pretrain")


if __name__ == "__main__":
    run()
