"""The paper's central claim at small scale: does accuracy hold as the batch grows?

    python tools/batch_scaling_study.py                  # the full study, about an hour on 2 cores
    python tools/batch_scaling_study.py --quick          # a few minutes: the pipeline end to end

Pretrains BERT-tiny with the real trainer (`trainers.bert.train`, gradient
accumulation for the large batches) on the built-in corpus, or on your
TFRecords (`--train_files`, `--eval_files`, `--vocab_file`), for the same
number of training sequences (so the same epochs) at every batch size, with
`lamb_tf.LAMB`, `lamb_tf.LARS`, `keras.optimizers.AdamW` and
`keras.optimizers.Lamb`.

1. Sweep: at the smallest batch, each optimizer is trained at five learning
   rates (x0.25, x0.5, x1, x2, x4 a usual value for it); the best held-out
   masked-LM accuracy picks its base rate.
2. Study: at every batch size B the rate is base x sqrt(B / B_0) (the
   square-root rule), and the warmup fraction grows as sqrt(B / B_0) too
   (from 2% of the steps at B_0, at most half of them).

Writes, in `--output_dir`: `results.md` (the sweep and the study as tables),
`results.csv` (one row per batch size and optimizer), `batch_scaling.png`
(held-out masked-LM accuracy against batch size, one line per optimizer),
and `cells/`, one folder per run with its log and a `result.json`. A cell
with a `result.json` is not run again: an interrupted study resumes.
"""

import collections
import contextlib
import csv
import json
import math
import os
import time

from trainers.bert import cli

cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import lamb_tf  # noqa: E402
from lamb_tf.schedules import sqrt_batch_scaling  # noqa: E402
from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.phases import Phase  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "/tmp/batch_scaling_study", "Tables, plot and runs go here.")
flags.DEFINE_bool("quick", False, "Two small batch sizes, few sequences: minutes, for CI.")
flags.DEFINE_list("batch_sizes", None, "Global batch sizes (default 32, 64, ..., 4096).")
flags.DEFINE_list(
    "optimizers", None, "Subset of: " + ", ".join(("lamb", "lars", "adamw", "keras_lamb"))
)
flags.DEFINE_integer("sequences", None, "Training sequences per run (default 32768).")
flags.DEFINE_string("data_dir", None, "Built-in data, made on first use (default output_dir/data).")
flags.DEFINE_string("train_files", None, "Your TFRecords (google-research/bert schema) instead.")
flags.DEFINE_string("eval_files", None, "Held-out TFRecords for --train_files.")
flags.DEFINE_string("vocab_file", None, "The vocabulary of --train_files.")
flags.DEFINE_integer("seq_length", 32, "Sequence length of the data.")
flags.DEFINE_integer("max_predictions", 5, "Masked-LM predictions per sequence of the data.")
flags.DEFINE_integer("seed", 0, "Of weights, dropout and input order, the same in every run.")

WEIGHT_DECAY = 0.01
EXCLUDE = ["layer_norm", "bias"]  # the BERT recipe's exclusions, for every optimizer


def _adamw(learning_rate):
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=WEIGHT_DECAY)
    optimizer.exclude_from_weight_decay(var_names=EXCLUDE)
    return optimizer


def _keras_lamb(learning_rate):
    # Keras' Lamb has no exclusion list; its decay is decoupled (outside the ratio).
    return keras.optimizers.Lamb(learning_rate=learning_rate, weight_decay=WEIGHT_DECAY)


def _lamb(learning_rate):
    return lamb_tf.LAMB(
        learning_rate=learning_rate, weight_decay=WEIGHT_DECAY, exclude_from_weight_decay=EXCLUDE
    )


def _lars(learning_rate):
    return lamb_tf.LARS(
        learning_rate=learning_rate, weight_decay=WEIGHT_DECAY, exclude_from_weight_decay=EXCLUDE
    )


# name: (label, factory, a usual learning rate at batch 32 for BERT-tiny)
OPTIMIZERS = {
    "lamb": ("lamb_tf.LAMB", _lamb, 1e-2),
    "lars": ("lamb_tf.LARS", _lars, 10.0),
    "adamw": ("keras AdamW", _adamw, 1e-3),
    "keras_lamb": ("keras Lamb", _keras_lamb, 1e-2),
}
SWEEP = (0.25, 0.5, 1.0, 2.0, 4.0)

Settings = collections.namedtuple(
    "Settings", "batch_sizes sequences micro_batch eval_steps sweep optimizers"
)


def _settings():
    if FLAGS.quick:
        batches, sequences, micro, eval_steps, sweep = [16, 64], 512, 16, 4, (0.5, 1.0)
    else:
        batches, sequences, micro, eval_steps, sweep = (
            [32 * 2**i for i in range(8)],
            32768,
            32,
            20,
            SWEEP,
        )
    batches = [int(b) for b in FLAGS.batch_sizes] if FLAGS.batch_sizes else batches
    sequences = FLAGS.sequences or sequences
    names = FLAGS.optimizers or list(OPTIMIZERS)
    unknown = set(names) - set(OPTIMIZERS)
    if unknown:
        raise app.UsageError(
            f"--optimizers: unknown {sorted(unknown)}; choose from {list(OPTIMIZERS)}"
        )
    batches = sorted(batches)
    for batch in batches:
        if sequences % batch or batch % min(micro, batch):
            raise app.UsageError(
                f"--batch_sizes: {batch} must divide --sequences={sequences} and be a multiple "
                f"of the micro-batch {micro}"
            )
    return Settings(batches, sequences, micro, eval_steps, sweep, names)


def _cell(name, batch, learning_rate, settings):
    """One pretraining run; its result, read back if it finished before."""
    folder = os.path.join(FLAGS.output_dir, "cells", f"{name}_b{batch}_lr{learning_rate:.4g}")
    result_file = os.path.join(folder, "result.json")
    if os.path.exists(result_file):
        with open(result_file) as f:
            return json.load(f)
    steps = settings.sequences // batch
    # 2% of the steps at the smallest batch, growing as sqrt(B / B_0).
    growth = math.sqrt(batch / settings.batch_sizes[0])
    warmup = max(1, min(steps // 2, round(0.02 * growth * steps)))
    phase = Phase(
        seq_length=FLAGS.seq_length,
        max_predictions=FLAGS.max_predictions,
        global_batch_size=batch,
        steps=steps,
        warmup_steps=warmup,
        peak_learning_rate=learning_rate,
        power=1.0,
        train_files=FLAGS.train_files or "builtin:pydoc",
        eval_files=FLAGS.eval_files,
        micro_batch_size=min(settings.micro_batch, batch),
    )
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    with open(os.path.join(folder, "train.log"), "a") as log, contextlib.redirect_stdout(log):
        summary = train_lib.train(
            folder,
            phases=[phase],
            optimizer=OPTIMIZERS[name][1],
            model="tiny",
            steps_per_loop=min(50, steps),
            checkpoint_every=None,
            keep_checkpoints=1,
            eval_steps=settings.eval_steps,
            vocab_file=FLAGS.vocab_file,
            data_dir=FLAGS.data_dir or os.path.join(FLAGS.output_dir, "data"),
            seed=FLAGS.seed,
            peak_flops=1e12,  # not measured: MFU plays no part here
            export=False,
            tensorboard=False,
        )
    result = {
        "optimizer": OPTIMIZERS[name][0],
        "batch_size": batch,
        "learning_rate": learning_rate,
        "warmup_steps": warmup,
        "steps": steps,
        "mlm_accuracy": summary["eval"]["mlm_accuracy"],
        "mlm_loss": summary["eval"]["mlm_loss"],
        "nsp_accuracy": summary["eval"]["nsp_accuracy"],
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    with open(result_file + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(result_file + ".tmp", result_file)  # a result is whole or absent
    return result


def _print(result, note=""):
    r = result
    print(
        f"{r['optimizer']:>13}  batch {r['batch_size']:>5}  lr {r['learning_rate']:<9.4g}"
        f"  {r['steps']:>5} steps  held-out mlm_acc {r['mlm_accuracy']:.4f}"
        f"  loss {r['mlm_loss']:.3f}  {r['wall_seconds']:.0f} s{note}",
        flush=True,
    )


def _tables(sweeps, rows, batches, sequences):
    lines = [f"## Learning-rate sweep at batch {batches[0]}", ""]
    lines.append("| optimizer | learning rate | held-out masked-LM accuracy | chosen |")
    lines.append("|---|---|---|---|")
    for results, best in sweeps.values():
        for r in results:
            chosen = "yes" if r is best else ""
            rate, accuracy = f"{r['learning_rate']:.4g}", f"{r['mlm_accuracy']:.4f}"
            lines.append(f"| {r['optimizer']} | {rate} | {accuracy} | {chosen} |")
    lines += ["", f"## Held-out masked-LM accuracy, {sequences} training sequences per run", ""]
    lines.append("Each cell: accuracy (learning rate, optimizer steps, wall time).")
    lines.append("")
    labels = list(dict.fromkeys(r["optimizer"] for r in rows))
    lines.append("| batch | " + " | ".join(labels) + " |")
    lines.append("|---" * (len(labels) + 1) + "|")
    for batch in batches:
        cells = []
        for label in labels:
            r = next(r for r in rows if r["optimizer"] == label and r["batch_size"] == batch)
            rate, seconds = f"{r['learning_rate']:.3g}", f"{r['wall_seconds']:.0f}"
            cells.append(f"{r['mlm_accuracy']:.4f} ({rate}, {r['steps']} steps, {seconds} s)")
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label in dict.fromkeys(r["optimizer"] for r in rows):
        mine = sorted((r for r in rows if r["optimizer"] == label), key=lambda r: r["batch_size"])
        axes.plot(
            [r["batch_size"] for r in mine], [r["mlm_accuracy"] for r in mine], "o-", label=label
        )
    axes.set_xscale("log", base=2)
    batches = sorted({r["batch_size"] for r in rows})
    axes.set_xticks(batches, [str(b) for b in batches])
    axes.minorticks_off()
    axes.set_xlabel("global batch size (same number of training sequences)")
    axes.set_ylabel("held-out masked-LM accuracy")
    axes.set_title("BERT-tiny, square-root learning-rate scaling")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")  # each run traces its own steps: retracing is expected
    settings = _settings()
    batches, names = settings.batch_sizes, settings.optimizers
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    print(
        f"batch sizes {batches}, {settings.sequences} sequences per run, optimizers {names}; "
        f"results in {FLAGS.output_dir}",
        flush=True,
    )
    sweeps = {}
    for name in names:
        results = []
        for factor in settings.sweep:
            rate = OPTIMIZERS[name][2] * factor
            results.append(_cell(name, batches[0], rate, settings))
            _print(results[-1], "  (sweep)")
        sweeps[name] = (results, max(results, key=lambda r: r["mlm_accuracy"]))
    rows = []
    for name in names:
        base = sweeps[name][1]["learning_rate"]
        for batch in batches:
            rate = sqrt_batch_scaling(base, batches[0], batch)
            rows.append(_cell(name, batch, rate, settings))
            _print(rows[-1])
    with open(os.path.join(FLAGS.output_dir, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = _tables(sweeps, rows, batches, settings.sequences)
    with open(os.path.join(FLAGS.output_dir, "results.md"), "w") as f:
        f.write(table)
    _plot(rows, os.path.join(FLAGS.output_dir, "batch_scaling.png"))
    print(table)
    print(f"written: results.md, results.csv, batch_scaling.png in {FLAGS.output_dir}")


if __name__ == "__main__":
    cli.run(main)
