"""Pretrain BERT with the paper's mixed-batch LAMB schedule.

    python -m trainers.bert.main --gin_file=gin_configs/tiny_cpu.gin --model_dir=/tmp/bert_tiny
    python -m trainers.bert.main --gin_file=gin_configs/bert_large_tpu_pod.gin \\
        --model_dir=gs://bucket/run --tpu=local

Parses the flags and gin files, picks the tf.distribute strategy, writes the
flags beside the checkpoints, then calls `trainers.bert.train.train`.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from trainers.bert import preemption  # noqa: E402
from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.tf_engine import strategies  # noqa: E402

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
    "mirrored on several GPUs, else one device.",
)
flags.mark_flag_as_required("model_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
    for path in FLAGS.gin_file:
        if not os.path.exists(path):
            raise app.UsageError(f"--gin_file={path} does not exist")
    gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_param)
    strategy = strategies.make_strategy(FLAGS.strategy, FLAGS.tpu)
    if strategy.extended.should_checkpoint:  # the chief, under several workers
        tf.io.gfile.makedirs(FLAGS.model_dir)  # also gs:// (os would make a local "gs:")
        with tf.io.gfile.GFile(os.path.join(FLAGS.model_dir, "flags.txt"), "w") as f:
            f.write(FLAGS.flags_into_string())
    summary = train_lib.train(FLAGS.model_dir, strategy=strategy)
    if summary["preempted"]:
        sys.exit(preemption.EXIT_STATUS)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
