"""What measuring the gradient noise scale costs the trainer, in one run.

    python tools/benchmark_noise_scale.py      # about 4 minutes on 2 cores

Trains the same model on the same batches with `train.gradient_noise_scale`
on and off, in turn (`--rounds` pairs, so both see the same machine), with
gradient accumulation so that it is measured (`--batch_size` /
`--micro_batch` micro-batches per update: one more pass over the gradients
each). Prints tokens/s of each run and the median over rounds of the
on / off ratio within a round; `--output_json` keeps the figures.
"""

import json
import os
import statistics
import tempfile

from trainers import stack
from trainers.bert import cli

stack.check_trainer()  # gin, keras-hub...: one line naming what to install
cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.model import bert as model  # noqa: E402
from trainers.bert.run.phases import Phase  # noqa: E402
from trainers.bert.run.progress import LOG  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "mini", f"BERT size: {', '.join(model.PRESETS)}.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("max_predictions", 20, "Masked-LM targets per sequence.")
flags.DEFINE_integer("batch_size", 64, "Sequences per update.")
flags.DEFINE_integer("micro_batch", 16, "Sequences per forward pass.")
flags.DEFINE_integer("steps", 24, "Timed updates per run (after a first, compiling loop).")
flags.DEFINE_integer("rounds", 3, "Pairs of runs, on then off.")
flags.DEFINE_string("data_dir", None, "Built-in data (default: a temporary folder).")
flags.DEFINE_string("output_json", None, "Write the figures here.")


def tokens_per_second(data_dir, noise_scale):
    """Median over host loops after the first (which compiles)."""
    loop = max(FLAGS.steps // 4, 1)
    phase = Phase(
        seq_length=FLAGS.seq_length,
        max_predictions=FLAGS.max_predictions,
        global_batch_size=FLAGS.batch_size,
        steps=FLAGS.steps + loop,
        peak_learning_rate=1e-3,
        micro_batch_size=FLAGS.micro_batch,
    )
    with tempfile.TemporaryDirectory() as model_dir:
        train_lib.train(
            model_dir,
            phases=[phase],
            model=FLAGS.model,
            steps_per_loop=loop,
            checkpoint_every=None,
            eval_steps=1,
            data_dir=data_dir,
            peak_flops=1e12,  # not measured: MFU plays no part here
            export=False,
            tensorboard=False,
            gradient_noise_scale=noise_scale,
        )
        with open(os.path.join(model_dir, LOG)) as f:
            records = [json.loads(line) for line in f]
    train = [r for r in records if r["kind"] == "train"]
    if noise_scale != all("gradient_variance" in r for r in train):
        raise AssertionError("the noise scale was not measured as asked")
    return statistics.median(r["tokens_per_second"] for r in train[1:])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    if FLAGS.batch_size % FLAGS.micro_batch or FLAGS.batch_size == FLAGS.micro_batch:
        raise app.UsageError(
            f"--batch_size={FLAGS.batch_size} must be a multiple (at least 2x) of "
            f"--micro_batch={FLAGS.micro_batch}: the noise scale is measured only then"
        )
    data_dir = FLAGS.data_dir or tempfile.mkdtemp(prefix="bert_benchmark_data_")
    rounds = []
    for index in range(FLAGS.rounds):
        on, off = tokens_per_second(data_dir, True), tokens_per_second(data_dir, False)
        rounds.append({"on": on, "off": off, "ratio": on / off})
        print(
            f"round {index + 1}: noise scale on {on:,.0f} tokens/s, off {off:,.0f} tokens/s, "
            f"on / off {on / off:.3f}",
            flush=True,
        )
    ratio = statistics.median(r["ratio"] for r in rounds)
    pieces = FLAGS.batch_size // FLAGS.micro_batch
    print(
        f"BERT-{FLAGS.model}, sequence {FLAGS.seq_length}, batch {FLAGS.batch_size} in {pieces} "
        f"micro-batches of {FLAGS.micro_batch}, {os.cpu_count()} CPU cores, TensorFlow "
        f"{tf.__version__}: with the noise scale {ratio:.3f}x the tokens/s without "
        f"(median over {FLAGS.rounds} rounds)"
    )
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump({"rounds": rounds, "ratio": ratio, "pieces": pieces}, f, indent=1)


if __name__ == "__main__":
    cli.run(main)
