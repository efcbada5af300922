"""Throughput of the BERT trainer against a peer, in one run on one machine.

    python tools/benchmark_trainer.py                    # about 12 minutes on 2 cores
    python tools/benchmark_trainer.py --model=base --steps=20 --batch_size=32
    python tools/benchmark_trainer.py --engines=tf       # without the JAX engine

Ours: `trainers.bert.train.train` (our loop, lamb_tf.LAMB) on each engine of
`--engines`: tf (tf.distribute, XLA) in this process, jax (Keras' JAX
backend) in a child process with KERAS_BACKEND=jax. Peer: keras-hub's
`BertMaskedLM` on the same backbone configuration, trained with
`model.fit(jit_compile=True)` and `keras.optimizers.Lamb` (TensorFlow
backend). Same data (the built-in corpus), sequence length, batch and
precision. All are timed after their first (compiling) steps. Our engines
are measured `--rounds` times each, in turns whose order alternates (tf,
jax, then jax, tf...), and each figure is the median over its rounds: a
machine whose speed drifts during the run moves both engines alike. Prints
tokens/s, model FLOPs utilisation against a matmul peak measured in the same
run, the ratios to the peer and between the engines, and the share of our
TensorFlow step spent in the optimizer; `--output_json` keeps the figures
(each round's too).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from trainers import stack
from trainers.bert import cli

stack.check_trainer()  # gin, keras-hub...: one line naming what to install
cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import keras  # noqa: E402
import keras_hub  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.data import patterns  # noqa: E402
from trainers.bert.data.input import pipeline  # noqa: E402
from trainers.bert.data.shards import builtin  # noqa: E402
from trainers.bert.model import bert as model  # noqa: E402
from trainers.bert.run import flops  # noqa: E402
from trainers.bert.run.phases import Phase  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "mini", f"BERT size: {', '.join(model.PRESETS)}.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("max_predictions", 20, "Masked-LM targets per sequence.")
flags.DEFINE_integer("batch_size", 64, "Sequences per step.")
flags.DEFINE_integer("steps", 40, "Timed steps per trainer (after the compiling ones).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to measure.")
flags.DEFINE_string("data_dir", None, "Built-in data (default: a temporary folder).")
flags.DEFINE_string("output_json", None, "Write the figures here.")
flags.DEFINE_list("engines", ["tf", "jax"], "Our trainer's engines to measure: tf, jax.")
flags.DEFINE_integer(
    "rounds", 2, "Measurements of each engine, in alternating order.", lower_bound=1
)
flags.DEFINE_string("jax_child", None, "Internal: measure the JAX engine in this precision.")
flags.DEFINE_float("jax_peak", None, "Internal: the parent's measured matmul peak.")
# Flags the JAX child takes from its parent.
SHARED = ("model", "seq_length", "max_predictions", "batch_size", "steps")


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
        optimizer_seconds = None
        if keras.backend.backend() == "tensorflow":
            optimizer_seconds = _optimizer_step_seconds(result["model"], result["optimizer"])
    return statistics.median(rates), optimizer_seconds


def ours_on_jax(data_dir, precision, peak):
    """Tokens/s of our trainer's JAX engine, in a child process (Keras'
    backend is chosen when Keras is first imported)."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "jax.json")
        args = [f"--{name}={FLAGS[name].value}" for name in SHARED]
        subprocess.run(
            [sys.executable, __file__, *args, f"--data_dir={data_dir}", f"--output_json={out}"]
            + [f"--jax_child={precision}", f"--jax_peak={peak}"],
            env=dict(os.environ, KERAS_BACKEND="jax"),
            check=True,
        )
        with open(out) as f:
            return json.load(f)["tokens_per_second"]


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


def _engine_rounds(data_dir, precision, peak):
    """[{engine: tokens/s, ...} for each round], the engines in turns whose
    order alternates from round to round."""
    rounds = []
    for index in range(FLAGS.rounds):
        order = FLAGS.engines if index % 2 == 0 else FLAGS.engines[::-1]
        measured = {"order": list(order)}
        for engine in order:
            if engine == "tf":
                measured["tf"], measured["tf_optimizer_seconds"] = ours(data_dir, precision, peak)
            else:
                measured["jax"] = ours_on_jax(data_dir, precision, peak)
        rounds.append(measured)
    return rounds


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
    if FLAGS.jax_child:
        tokens, _ = ours(FLAGS.data_dir, FLAGS.jax_child, FLAGS.jax_peak)
        with open(FLAGS.output_json, "w") as f:
            json.dump({"tokens_per_second": tokens}, f)
        return
    unknown = set(FLAGS.engines) - {"tf", "jax"}
    if unknown:
        raise app.UsageError(f"--engines: unknown {sorted(unknown)}; choose from tf, jax")
    if "jax" in FLAGS.engines:  # checked here, not minutes later in the JAX child
        stack.require_jax_engine(f"--engines={','.join(FLAGS.engines)}", "--engines=tf")
    data_dir = FLAGS.data_dir or tempfile.mkdtemp(prefix="bert_benchmark_data_")
    config = _config()
    sequence_flops = flops.training_flops_per_sequence(
        config, FLAGS.seq_length, FLAGS.max_predictions
    )
    token_flops = sequence_flops / FLAGS.seq_length
    rows = []
    for precision in FLAGS.precisions:
        peak = flops.measure_peak_flops("float32" if precision == "float32" else "bfloat16")
        row = {"precision": precision, "peak_gflops": peak / 1e9}
        row["peer_tokens_per_second"] = peer_tokens = peer(data_dir, precision)
        row["peer_mfu"] = peer_tokens * token_flops / peak
        measured = _engine_rounds(data_dir, precision, peak)
        row["rounds"] = measured
        if "tf" in FLAGS.engines:
            ours_tokens = statistics.median(m["tf"] for m in measured)
            optimizer_seconds = statistics.median(m["tf_optimizer_seconds"] for m in measured)
            step_seconds = FLAGS.batch_size * FLAGS.seq_length / ours_tokens
            row.update(
                ours_tokens_per_second=ours_tokens,
                ratio=ours_tokens / peer_tokens,
                ours_mfu=ours_tokens * token_flops / peak,
                optimizer_share=optimizer_seconds / step_seconds,
            )
        if "jax" in FLAGS.engines:
            jax_tokens = statistics.median(m["jax"] for m in measured)
            row.update(
                jax_tokens_per_second=jax_tokens,
                jax_ratio=jax_tokens / peer_tokens,
                jax_mfu=jax_tokens * token_flops / peak,
            )
            if "tf" in FLAGS.engines:
                row["jax_over_tf"] = statistics.median(m["jax"] / m["tf"] for m in measured)
        rows.append(row)
    print(
        f"\nBERT-{FLAGS.model} ({config.num_layers} layers x {config.hidden_dim}, vocabulary "
        f"{config.vocabulary_size}), sequence {FLAGS.seq_length}, batch {FLAGS.batch_size}, "
        f"{FLAGS.max_predictions} predictions, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}\n"
    )
    columns = [("precision", "precision", "{}"), ("matmul peak GFLOP/s", "peak_gflops", "{:.0f}")]
    if "tf" in FLAGS.engines:
        columns += [("ours (tf) tokens/s", "ours_tokens_per_second", "{:,.0f}")]
    if "jax" in FLAGS.engines:
        columns += [("ours (jax) tokens/s", "jax_tokens_per_second", "{:,.0f}")]
    columns += [("peer tokens/s", "peer_tokens_per_second", "{:,.0f}")]
    if "tf" in FLAGS.engines:
        columns += [("tf / peer", "ratio", "{:.2f}x")]
    if "jax" in FLAGS.engines:
        columns += [("jax / peer", "jax_ratio", "{:.2f}x")]
    if set(FLAGS.engines) == {"tf", "jax"}:
        columns += [("jax / tf", "jax_over_tf", "{:.2f}x")]
    for engine, key in (("tf", "ours_mfu"), ("jax", "jax_mfu")):
        if engine in FLAGS.engines:
            columns += [(f"{engine} MFU", key, "{:.1%}")]
    columns += [("peer MFU", "peer_mfu", "{:.1%}")]
    if "tf" in FLAGS.engines:
        columns += [("optimizer share of the tf step", "optimizer_share", "{:.1%}")]
    print("| " + " | ".join(title for title, _, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(form.format(r[key]) for _, key, form in columns) + " |")
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump({"flags": FLAGS.flag_values_dict(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    cli.run(main)
