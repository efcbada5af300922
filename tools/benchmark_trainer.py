"""Throughput of the BERT trainer against a peer, in one run on one machine.

    python tools/benchmark_trainer.py                    # about 5 minutes on 2 cores
    python tools/benchmark_trainer.py --model=base --steps=20 --batch_size=32

Ours: `trainers.bert.train.train` (our loop, XLA, lamb_tf.LAMB). Peer:
keras-hub's `BertMaskedLM` on the same backbone configuration, trained with
`model.fit(jit_compile=True)` and `keras.optimizers.Lamb`. Same data (the
built-in corpus), sequence length, batch and precision. Both are timed after
their first (compiling) steps. Prints tokens/s, model FLOPs utilisation
against a matmul peak measured in the same run, the ratio ours/peer, and the
share of our step spent in the optimizer; `--output_json` keeps the figures.
"""

import json
import os
import statistics
import tempfile
import time

from trainers.bert import cli

cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import keras  # noqa: E402
import keras_hub  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from trainers.bert import flops, model  # noqa: E402
from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.data import builtin, patterns, pipeline  # noqa: E402
from trainers.bert.phases import Phase  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "mini", f"BERT size: {', '.join(model.PRESETS)}.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("max_predictions", 20, "Masked-LM targets per sequence.")
flags.DEFINE_integer("batch_size", 64, "Sequences per step.")
flags.DEFINE_integer("steps", 40, "Timed steps per trainer (after the compiling ones).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to measure.")
flags.DEFINE_string("data_dir", None, "Built-in data (default: a temporary folder).")
flags.DEFINE_string("output_json", None, "Write the figures here.")


def ours(data_dir, precision, peak):
    """Tokens/s of our trainer: median over host loops after the first."""
    with tempfile.TemporaryDirectory() as model_dir:
        loop = max(FLAGS.steps // 4, 1)
        phase = Phase(
            seq_length=FLAGS.seq_length,
            max_predictions=FLAGS.max_predictions,
            global_batch_size=FLAGS.batch_size,
            steps=FLAGS.steps + loop,
            peak_learning_rate=1e-3,
        )
        result = train_lib.train(
            model_dir,
            phases=[phase],
            model=FLAGS.model,
            precision=precision,
            steps_per_loop=loop,
            checkpoint_every=None,
            eval_steps=1,
            data_dir=data_dir,
            peak_flops=peak,
            export=False,
            tensorboard=False,
        )
        with open(os.path.join(model_dir, "log.jsonl")) as f:
            records = [json.loads(line) for line in f]
        rates = [r["tokens_per_second"] for r in records if r["kind"] == "train"][1:]
        optimizer_seconds = _optimizer_step_seconds(result["model"], result["optimizer"])
    return statistics.median(rates), optimizer_seconds


def _optimizer_step_seconds(net, optimizer):
    grads = [tf.random.normal(v.shape, stddev=1e-3) for v in net.trainable_variables]
    variables = net.trainable_variables

    @tf.function
    def step():
        optimizer.apply(grads, variables)

    return _median_seconds(step, 3, 10)


def peer(data_dir, precision):
    """Tokens/s of keras-hub's BertMaskedLM with model.fit and Keras' Lamb."""
    train_pattern, _ = builtin.shards(data_dir, FLAGS.seq_length, FLAGS.max_predictions)
    files = patterns.match_files(train_pattern)
    config = _config()
    with model.dtype_policy(precision):
        masked_lm = keras_hub.models.BertMaskedLM(
            backbone=model.build_backbone(config), preprocessor=None
        )
    masked_lm.compile(
        optimizer=keras.optimizers.Lamb(1e-3, epsilon=1e-6),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )

    def features(batch):
        inputs = {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        inputs["mask_positions"] = batch["masked_lm_positions"]
        return inputs, batch["masked_lm_ids"], batch["masked_lm_weights"]

    dataset = pipeline.make_dataset(
        files, FLAGS.seq_length, FLAGS.max_predictions, FLAGS.batch_size
    ).map(features)
    masked_lm.fit(dataset, steps_per_epoch=max(FLAGS.steps // 4, 1), epochs=1, verbose=0)
    start = time.perf_counter()
    masked_lm.fit(dataset, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return FLAGS.steps * FLAGS.batch_size * FLAGS.seq_length / seconds


def _config():
    return model.preset(FLAGS.model, vocabulary_size=builtin.VOCAB_SIZE)


def _median_seconds(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    data_dir = FLAGS.data_dir or tempfile.mkdtemp(prefix="bert_benchmark_data_")
    config = _config()
    sequence_flops = flops.training_flops_per_sequence(
        config, FLAGS.seq_length, FLAGS.max_predictions
    )
    token_flops = sequence_flops / FLAGS.seq_length
    rows = []
    for precision in FLAGS.precisions:
        peak = flops.measure_peak_flops("float32" if precision == "float32" else "bfloat16")
        ours_tokens, optimizer_seconds = ours(data_dir, precision, peak)
        peer_tokens = peer(data_dir, precision)
        step_seconds = FLAGS.batch_size * FLAGS.seq_length / ours_tokens
        rows.append(
            {
                "precision": precision,
                "peak_gflops": peak / 1e9,
                "ours_tokens_per_second": ours_tokens,
                "peer_tokens_per_second": peer_tokens,
                "ratio": ours_tokens / peer_tokens,
                "ours_mfu": ours_tokens * token_flops / peak,
                "peer_mfu": peer_tokens * token_flops / peak,
                "optimizer_share": optimizer_seconds / step_seconds,
            }
        )
    print(
        f"\nBERT-{FLAGS.model} ({config.num_layers} layers x {config.hidden_dim}, vocabulary "
        f"{config.vocabulary_size}), sequence {FLAGS.seq_length}, batch {FLAGS.batch_size}, "
        f"{FLAGS.max_predictions} predictions, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}\n"
    )
    print(
        "| precision | matmul peak GFLOP/s | ours tokens/s | peer tokens/s | ours / peer "
        "| ours MFU | peer MFU | optimizer share of our step |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['precision']} | {r['peak_gflops']:.0f} | {r['ours_tokens_per_second']:,.0f} "
            f"| {r['peer_tokens_per_second']:,.0f} | {r['ratio']:.2f}x "
            f"| {100 * r['ours_mfu']:.1f}% | {100 * r['peer_mfu']:.1f}% "
            f"| {100 * r['optimizer_share']:.1f}% |"
        )
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump({"flags": FLAGS.flag_values_dict(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    cli.run(main)
