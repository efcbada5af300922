"""Sequences/s of the JAX engine's train step on synthetic batches: runs
where TensorFlow is absent (a GPU or TPU machine with JAX alone). Keras
runs on JAX here (KERAS_BACKEND=jax unless set otherwise).

    python tools/benchmark_jax_step.py                       # BERT-base and -large
    python tools/benchmark_jax_step.py --models=tiny --steps=2   # a CPU check

The step is the trainer's (`trainers.bert.engines.jax_engine.steps`): masked-LM and
next-sentence pretraining of keras-hub's `BertBackbone`, `lamb_tf.LAMB`
with weight decay, clipping at 1.0, `--accumulation` micro-batches of
`--micro_batch` sequences per device accumulated into each update, data
parallel over every device. The paper's phase 1 by default: sequence 128,
20 masked-LM predictions, bf16 compute. One batch of random token ids stays
on the devices, so this times the compiled step, not the input. Prints
sequences/s, model FLOPs utilisation against a bf16 matmul peak measured in
the same run, and the ratio per device to NVIDIA's published BERT-large
phase-1 figure, 475 sequences/s on one A100-80GB; `--json_out` keeps them.
"""

import json
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras loads

from trainers import stack  # noqa: E402

stack.require("jax", ["jax"], "tools/benchmark_jax_step.py", "JAX")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import lamb_tf  # noqa: E402
from trainers.bert.engines.jax_engine import devices, steps  # noqa: E402
from trainers.bert.model import bert as model_lib  # noqa: E402
from trainers.bert.run import flops  # noqa: E402
from trainers.bert.run import phases as phases_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["base", "large"], f"BERT sizes: {', '.join(model_lib.PRESETS)}.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("max_predictions", 20, "Masked-LM targets per sequence.")
flags.DEFINE_integer("micro_batch", 64, "Sequences per device per forward pass.")
flags.DEFINE_integer("accumulation", 4, "Micro-batches accumulated into each update.")
flags.DEFINE_integer("vocabulary_size", 30522, "Vocabulary (BERT's uncased: 30522).")
flags.DEFINE_enum("precision", "mixed_bfloat16", ["float32", "mixed_bfloat16"], "Precision.")
flags.DEFINE_integer("warmup", 2, "Untimed updates first (the first compiles).")
flags.DEFINE_integer("steps", 10, "Timed updates.")
flags.DEFINE_string("json_out", None, "Also write the figures here as JSON.")

# NVIDIA's published BERT-large phase-1 pretraining throughput, one A100-80GB.
A100_REFERENCE = 475.0


def synthetic_batch(rng, size, config):
    """Random sequences in the records' layout (two segments, no padding)."""
    length, predictions = FLAGS.seq_length, FLAGS.max_predictions
    positions = np.sort(
        np.stack(
            [rng.choice(np.arange(1, length), predictions, replace=False) for _ in range(size)]
        ),
        axis=1,
    )
    return {
        "token_ids": rng.integers(0, config.vocabulary_size, (size, length), dtype=np.int32),
        "segment_ids": (np.arange(length) >= length // 2).astype(np.int32)[None].repeat(size, 0),
        "padding_mask": np.ones((size, length), np.int32),
        "masked_lm_positions": positions.astype(np.int32),
        "masked_lm_ids": rng.integers(0, config.vocabulary_size, (size, predictions), np.int32),
        "masked_lm_weights": np.ones((size, predictions), np.float32),
        "next_sentence_labels": rng.integers(0, 2, (size,), dtype=np.int32),
    }


def measure(name, where, peak):
    config = model_lib.preset(name, vocabulary_size=FLAGS.vocabulary_size)
    with model_lib.dtype_policy(FLAGS.precision):
        model = model_lib.build_pretraining_model(config)
        optimizer = lamb_tf.LAMB(
            learning_rate=0.0, weight_decay=0.01, exclude_from_weight_decay=["layer_norm", "bias"]
        )
        optimizer.build(model.trainable_variables)
    per_device = FLAGS.micro_batch * FLAGS.accumulation
    phase = phases_lib.Phase(
        seq_length=FLAGS.seq_length,
        max_predictions=FLAGS.max_predictions,
        global_batch_size=per_device * where.count,
        steps=1000,
        warmup_steps=100,
        peak_learning_rate=1e-4,
        micro_batch_size=FLAGS.micro_batch,
    )
    plans = phases_lib.plan([phase], where.count, config.max_sequence_length)
    step = steps.make_train_step(
        model, optimizer, where.mesh, phases_lib.schedule(plans), FLAGS.accumulation, 1.0
    )
    state = where.replicate(steps.State.of(model, optimizer))
    rng = np.random.default_rng(0)
    batch = where.batch(synthetic_batch(rng, per_device * where.local_count, config))
    print(f"BERT-{name}: compiling the step ({where.describe()})", flush=True)
    for _ in range(FLAGS.warmup):
        state, figures = step(state, batch)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        state, figures = step(state, batch)
    jax.block_until_ready((state, figures))
    seconds = time.perf_counter() - start
    finite = bool(figures[2])
    sequences = FLAGS.steps * per_device * where.count / seconds
    sequence_flops = flops.training_flops_per_sequence(
        config, FLAGS.seq_length, FLAGS.max_predictions
    )
    return {
        "model": name,
        "parameters": model.count_params(),
        "global_batch": per_device * where.count,
        "step_seconds": seconds / FLAGS.steps,
        "sequences_per_second": sequences,
        "sequences_per_second_per_device": sequences / where.count,
        "mfu": sequences * sequence_flops / (peak * where.count),
        "vs_a100_reference": sequences / where.count / A100_REFERENCE,
        "finite": finite,
    }


def main(argv):
    del argv
    if keras.backend.backend() != "jax":
        raise app.UsageError(f"Keras runs on {keras.backend.backend()}: set KERAS_BACKEND=jax")
    where = devices.Devices()
    dtype = "bfloat16" if FLAGS.precision == "mixed_bfloat16" else "float32"
    peak = devices.measure_peak_flops(dtype)
    device = jax.devices()[0]
    info = {
        "platform": platform.platform(),
        "device": getattr(device, "device_kind", device.platform),
        "devices": where.count,
        "jax": jax.__version__,
        "keras": keras.__version__,
        "matmul_peak_tflops": peak / 1e12,
    }
    print(
        f"{info['devices']} x {info['device']}, JAX {info['jax']}, Keras {info['keras']}, "
        f"{FLAGS.precision}, {dtype} matmul peak {peak / 1e12:.1f} TFLOP/s; sequence "
        f"{FLAGS.seq_length}, {FLAGS.max_predictions} predictions, {FLAGS.accumulation} x "
        f"{FLAGS.micro_batch} sequences per device per update",
        flush=True,
    )
    rows = [measure(name, where, peak) for name in FLAGS.models]
    print(
        "\n| model | parameters | global batch | step s | sequences/s | per device | MFU "
        "| per device / A100 BERT-large ref. | finite |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| BERT-{r['model']} | {r['parameters'] / 1e6:.0f}M | {r['global_batch']} "
            f"| {r['step_seconds']:.3f} | {r['sequences_per_second']:,.1f} "
            f"| {r['sequences_per_second_per_device']:,.1f} | {100 * r['mfu']:.1f}% "
            f"| {r['vs_a100_reference']:.2f}x | {'yes' if r['finite'] else 'no'} |"
        )
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(
                {"machine": info, "flags": FLAGS.flag_values_dict(), "rows": rows}, f, indent=1
            )


if __name__ == "__main__":
    app.run(main)
