"""Sequences/s of the JAX engine's train step on synthetic batches: runs
where TensorFlow is absent (a GPU or TPU machine with JAX alone). Keras
runs on JAX here (KERAS_BACKEND=jax unless set otherwise).

    python tools/benchmark_jax_step.py                           # every workload
    python tools/benchmark_jax_step.py --workloads=phase1 --models=base
    python tools/benchmark_jax_step.py --models=tiny --steps=2 --micro_batch=4   # a CPU check

The step is the trainer's (`trainers.bert.engines.jax_engine.steps`) with
the task and optimizer of each workload (`--workloads`):
  phase1  pretraining (masked LM and next sentence), sequence 128, 20
          masked-LM predictions, `lamb_tf.LAMB`; BERT-base and BERT-large;
  phase2  the paper's phase 2: sequence 512, 80 predictions; BERT-large;
  squad   SQuAD fine-tuning: the span head (`heads.Span`) on BERT-base,
          sequence 384, AdamW as `finetune.adamw`, 32 sequences per
          device per update (the recipe's batch on one GPU).
Clipping at 1.0, bf16 compute, `--accumulation` micro-batches of
`--micro_batch` sequences per device accumulated into each update (each
workload's own sizes, which fit an 80 GB GPU, unless given), data parallel
over every device. One batch of random token ids stays on the devices, so
this times the compiled step, not the input. Prints per workload and model
sequences/s, model FLOPs utilisation against a bf16 matmul peak measured in
the same run and, for BERT-large phase 1 only, the ratio per device to
NVIDIA's published figure, 475 sequences/s on one A100-80GB; `--json_out`
keeps them.
"""

import dataclasses
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
from trainers.bert.finetune import heads  # noqa: E402
from trainers.bert.model import bert as model_lib  # noqa: E402
from trainers.bert.model import tasks  # noqa: E402
from trainers.bert.run import phases as phases_lib  # noqa: E402


def lamb():
    return lamb_tf.LAMB(
        learning_rate=0.0, weight_decay=0.01, exclude_from_weight_decay=["layer_norm", "bias"]
    )


def adamw():
    """`trainers.bert.finetune.train.adamw` with its defaults, made here:
    that module imports TensorFlow (the fine-tuning records' pipeline)."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=0.0, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


@dataclasses.dataclass(frozen=True)
class Workload:
    """A step to time. `micro_batch` x `accumulation` sequences per device
    per update: sizes that fit an 80 GB GPU in bf16."""

    models: tuple  # BERT sizes timed unless --models
    seq_length: int
    max_predictions: int  # masked-LM targets; 0: a fine-tuning head
    micro_batch: int
    accumulation: int
    task: object  # `trainers.bert.model.tasks`' interface
    optimizer: object  # () -> a Keras optimizer
    peak_learning_rate: float


WORKLOADS = {
    "phase1": Workload(("base", "large"), 128, 20, 64, 4, tasks.PRETRAINING, lamb, 1e-4),
    "phase2": Workload(("large",), 512, 80, 16, 4, tasks.PRETRAINING, lamb, 1e-4),
    "squad": Workload(("base",), 384, 0, 32, 1, heads.Span(), adamw, 3e-5),
}

# NVIDIA's published BERT-large phase-1 pretraining throughput, one A100-80GB.
A100_REFERENCE = 475.0

FLAGS = flags.FLAGS
flags.DEFINE_list("workloads", list(WORKLOADS), f"Steps to time: {', '.join(WORKLOADS)}.")
flags.DEFINE_list(
    "models",
    None,
    f"BERT sizes ({', '.join(model_lib.PRESETS)}) for every workload; default: each workload's.",
)
flags.DEFINE_integer(
    "micro_batch", None, "Sequences per device per forward pass; default: each workload's."
)
flags.DEFINE_integer("accumulation", None, "Micro-batches per update; default: each workload's.")
flags.DEFINE_integer("vocabulary_size", 30522, "Vocabulary (BERT's uncased: 30522).")
flags.DEFINE_enum("precision", "mixed_bfloat16", ["float32", "mixed_bfloat16"], "Precision.")
flags.DEFINE_integer("warmup", 2, "Untimed updates first (the first compiles).")
flags.DEFINE_integer("steps", 10, "Timed updates.")
flags.DEFINE_string("json_out", None, "Also write the figures here as JSON.")


def pretraining_batch(rng, size, length, predictions, vocabulary_size):
    """Random sequences in the pretraining records' layout (two segments, no
    padding, `predictions` distinct masked positions after [CLS])."""
    positions = np.sort(
        np.stack(
            [rng.choice(np.arange(1, length), predictions, replace=False) for _ in range(size)]
        ),
        axis=1,
    )
    return {
        "token_ids": rng.integers(0, vocabulary_size, (size, length), dtype=np.int32),
        "segment_ids": (np.arange(length) >= length // 2).astype(np.int32)[None].repeat(size, 0),
        "padding_mask": np.ones((size, length), np.int32),
        "masked_lm_positions": positions.astype(np.int32),
        "masked_lm_ids": rng.integers(0, vocabulary_size, (size, predictions), np.int32),
        "masked_lm_weights": np.ones((size, predictions), np.float32),
        "next_sentence_labels": rng.integers(0, 2, (size,), dtype=np.int32),
    }


def span_batch(rng, size, length, vocabulary_size, max_query_length=64, max_answer_length=30):
    """Random SQuAD features in the fine-tuning records' layout: [CLS] a
    question [SEP] in segment 0, the context to the end in segment 1 (full
    windows, no padding), an answer of up to `max_answer_length` tokens
    inside the context."""
    context = min(max_query_length + 2, length // 2)  # its first token
    start = rng.integers(context, length - 1, (size,))
    end = np.minimum(start + rng.integers(0, max_answer_length, (size,)), length - 2)
    return {
        "token_ids": rng.integers(0, vocabulary_size, (size, length), dtype=np.int32),
        "segment_ids": (np.arange(length) >= context).astype(np.int32)[None].repeat(size, 0),
        "padding_mask": np.ones((size, length), np.int32),
        "index": np.arange(size, dtype=np.int32),
        "start_positions": start.astype(np.int32),
        "end_positions": end.astype(np.int32),
    }


def synthetic_batch(rng, size, workload, vocabulary_size):
    if workload.task is tasks.PRETRAINING:
        return pretraining_batch(
            rng, size, workload.seq_length, workload.max_predictions, vocabulary_size
        )
    return span_batch(rng, size, workload.seq_length, vocabulary_size)


def a100_reference(name, model):
    """NVIDIA's figure where it measures the same step, else None."""
    return A100_REFERENCE if (name, model) == ("phase1", "large") else None


def measure(name, model_name, where, peak):
    workload = WORKLOADS[name]
    micro = FLAGS.micro_batch or workload.micro_batch
    accumulation = FLAGS.accumulation or workload.accumulation
    config = model_lib.preset(model_name, vocabulary_size=FLAGS.vocabulary_size)
    with model_lib.dtype_policy(FLAGS.precision):
        model = workload.task.build(config)
        optimizer = workload.optimizer()
        optimizer.build(model.trainable_variables)
    per_device = micro * accumulation
    phase = phases_lib.Phase(
        seq_length=workload.seq_length,
        max_predictions=max(workload.max_predictions, 1),  # a Phase needs one; a head reads none
        global_batch_size=per_device * where.count,
        steps=1000,
        warmup_steps=100,
        peak_learning_rate=workload.peak_learning_rate,
        micro_batch_size=micro,
    )
    plans = phases_lib.plan([phase], where.count, config.max_sequence_length)
    schedule = phases_lib.schedule(plans)
    step = steps.make_train_step(
        model,
        optimizer,
        where.mesh,
        schedule,
        accumulation,
        clip_norm=1.0,
        task=workload.task,
        rate_factors=workload.task.rate_factors(model),  # as the engine
    )
    state = where.replicate(steps.State.of(model, optimizer))
    rng = np.random.default_rng(0)
    local = synthetic_batch(rng, per_device * where.local_count, workload, config.vocabulary_size)
    batch = where.batch(local)
    print(
        f"{name}, BERT-{model_name}: sequence {workload.seq_length}, "
        f"{workload.max_predictions} predictions, {accumulation} x {micro} sequences per "
        f"device per update; compiling the step",
        flush=True,
    )
    for _ in range(FLAGS.warmup):
        state, figures = step(state, batch)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        state, figures = step(state, batch)
    jax.block_until_ready((state, figures))
    seconds = time.perf_counter() - start
    sequences = FLAGS.steps * per_device * where.count / seconds
    sequence_flops = workload.task.flops_per_sequence(config, phase)
    reference = a100_reference(name, model_name)
    return {
        "workload": name,
        "model": model_name,
        "parameters": model.count_params(),
        "seq_length": workload.seq_length,
        "max_predictions": workload.max_predictions,
        "micro_batch": micro,
        "accumulation": accumulation,
        "global_batch": per_device * where.count,
        "step_seconds": seconds / FLAGS.steps,
        "sequences_per_second": sequences,
        "sequences_per_second_per_device": sequences / where.count,
        "mfu": sequences * sequence_flops / (peak * where.count),
        "vs_a100_reference": None if reference is None else sequences / where.count / reference,
        "finite": bool(figures[2]),
    }


def main(argv):
    del argv
    if keras.backend.backend() != "jax":
        raise app.UsageError(f"Keras runs on {keras.backend.backend()}: set KERAS_BACKEND=jax")
    unknown = [w for w in FLAGS.workloads if w not in WORKLOADS]
    if unknown:
        raise app.UsageError(f"--workloads: unknown {unknown}; choose from {list(WORKLOADS)}")
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
        f"{info['devices']} x {info['device']} ({where.describe()}), JAX {info['jax']}, "
        f"Keras {info['keras']}, {FLAGS.precision}, {dtype} matmul peak "
        f"{peak / 1e12:.1f} TFLOP/s",
        flush=True,
    )
    rows = [
        measure(name, model_name, where, peak)
        for name in FLAGS.workloads
        for model_name in FLAGS.models or WORKLOADS[name].models
    ]
    print(
        "\n| workload | model | parameters | sequence | global batch | step s | sequences/s "
        "| per device | MFU | per device / A100 BERT-large phase-1 ref. | finite |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["vs_a100_reference"]
        print(
            f"| {r['workload']} | BERT-{r['model']} | {r['parameters'] / 1e6:.0f}M "
            f"| {r['seq_length']} | {r['global_batch']} | {r['step_seconds']:.3f} "
            f"| {r['sequences_per_second']:,.1f} | {r['sequences_per_second_per_device']:,.1f} "
            f"| {100 * r['mfu']:.1f}% | {'-' if ratio is None else f'{ratio:.2f}x'} "
            f"| {'yes' if r['finite'] else 'no'} |"
        )
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(
                {"machine": info, "flags": FLAGS.flag_values_dict(), "rows": rows}, f, indent=1
            )


if __name__ == "__main__":
    app.run(main)
