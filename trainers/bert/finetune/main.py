"""Fine-tune a pretrained BERT encoder on SQuAD, GLUE or the built-in task.

    python -m trainers.bert.finetune.main --gin_file=gin_configs/finetune_tiny_cpu.gin \\
        --encoder=/tmp/bert_tiny/encoder --model_dir=/tmp/bert_tiny_topics
    python -m trainers.bert.finetune.main --gin_file=gin_configs/squad_base_gpu.gin \\
        --encoder=/data/bert_base_en_uncased --train_file=train-v1.1.json \\
        --predict_file=dev-v1.1.json --model_dir=/tmp/squad_base
    python -m trainers.bert.finetune.main --gin_file=gin_configs/glue_base_gpu.gin \\
        --task=mnli --data_dir=glue_data/MNLI --encoder=... --model_dir=/tmp/mnli
    KERAS_BACKEND=jax python -m trainers.bert.finetune.main --engine=jax \\
        --gin_file=gin_configs/finetune_tiny_cpu.gin --encoder=... --model_dir=/tmp/topics_jax

The flags below override the gin file's `finetune.*` settings of the same
names; the engine and device flags are the pretraining command's
(`engines.launch`). Errors are one line (`trainers.bert.cli`): exit status 2 for a
configuration, 1 for data or a runtime failure; a preempted run (SIGTERM,
Ctrl-C) exits 128 + the signal after its checkpoint, and a restart resumes.
"""

import sys

from trainers import stack

stack.check_trainer()

from absl import app, flags, logging  # noqa: E402

from trainers.bert import cli  # noqa: E402
from trainers.bert.engines import launch  # noqa: E402
from trainers.bert.finetune import train as finetune_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. 'finetune.epochs = 2.0'.")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs, predictions and scores.")
flags.DEFINE_string("task", None, "squad, a GLUE task (sst2, mnli, ...) or pydoc_topics.")
flags.DEFINE_string("encoder", None, "A keras-hub BERT preset folder (e.g. MODEL_DIR/encoder).")
flags.DEFINE_string("data_dir", None, "GLUE: the task's folder (train.tsv, dev.tsv, test.tsv).")
flags.DEFINE_string("train_file", None, "SQuAD: the training JSON.")
flags.DEFINE_string("predict_file", None, "SQuAD: the dev JSON to predict and score.")
flags.DEFINE_boolean(
    "random_init", False, "Fine-tune the encoder's shape from random weights (the baseline)."
)
launch.define_flags()
flags.mark_flag_as_required("model_dir")

OVERRIDES = ("task", "encoder", "data_dir", "train_file", "predict_file")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    cli.parse_gin(FLAGS.gin_file, FLAGS.gin_param)
    overrides = {name: FLAGS[name].value for name in OVERRIDES if FLAGS[name].present}
    if FLAGS.random_init:
        overrides["pretrained"] = False
    engine, strategy = launch.start()
    summary = finetune_lib.finetune(
        FLAGS.model_dir,
        strategy=strategy,
        engine=engine,
        flags_text=FLAGS.flags_into_string(),
        **overrides,
    )
    if summary["preempted"]:
        sys.exit(summary["exit_status"])


def run():
    cli.run(main, name="bert-finetune")


if __name__ == "__main__":
    run()
