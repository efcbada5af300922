"""Steps to a target against batch size: the paper's claim measured the way
the field measures data parallelism (Shallue et al. 2018; the deep-learning
tuning playbook).

    python tools/batch_scaling_study.py          # the full study: about 45 min on 2 cores
    python tools/batch_scaling_study.py --quick  # under 3 minutes: the pipeline end to end
    python tools/batch_scaling_study.py --size=accelerator --strategy=auto  # one GPU/TPU

Every run pretrains BERT with the real trainer (`trainers.bert.train`,
gradient accumulation for the large batches) until its held-out masked-LM
accuracy reaches `--target` (the trainer's `target_mlm_accuracy`, checked
about `--evals` times per run) or a cap of `--max_sequences` training
sequences, the same at every batch (so at least 100 updates at the largest
batch). The learning rate warms up linearly, then decays linearly to 0 at
the cap (the paper's recipe, its length set by the cap). Optimizers:
`lamb_tf.LAMB`, `lamb_tf.LARS`, `keras.optimizers.AdamW`,
`keras.optimizers.Lamb` and Nesterov momentum (`keras.optimizers.SGD`).

Two protocols:
- tuned: every optimizer at every batch size gets `--trials` runs, at
  quasi-random (Halton) points of the same box: peak learning rate from
  1/4 to 4 times a usual rate for the optimizer scaled by sqrt(B / B_0),
  warmup from 0.5% to 30% of the cap. A cell reports its best run (fewest
  steps to the target).
- paper: the best tuned run at the smallest batch B_0 gives the base rate
  and warmup fraction; at batch B the rate is scaled by sqrt(B / B_0) and
  the warmup fraction grows linearly with B (at most 30%): the paper's
  untuned recipe.
Then the best tuned run of `--repeat` cells runs again with another seed.

If an optimizer misses the target at B_0 with every trial, the study stops
there with that finding (lower `--target` or raise `--max_sequences`).

Writes, in `--output_dir`: `results.md` (tables), `results.csv` (one row per
protocol, optimizer and batch), `trials.csv` (every run),
`batch_scaling.png`, `corpus.json` (what the data was made from, with its
SHA-256), and `cells/`, one folder per run with its log and `result.json`:
a run with a `result.json` is not run again, so a study can be interrupted
and grown (more batches, optimizers or trials) in steps.
"""

import contextlib
import dataclasses
import json
import math
import os
import sys
import time

from trainers import stack
from trainers.bert import cli

stack.check_trainer()  # gin, keras-hub...: one line naming what to install
cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import batch_scaling_report as report  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

import lamb_tf  # noqa: E402
from trainers.bert import train as train_lib  # noqa: E402
from trainers.bert.data import records  # noqa: E402
from trainers.bert.data.shards import builtin, corpus, create, docstrings, instances  # noqa: E402
from trainers.bert.engines.tf_engine import strategies  # noqa: E402
from trainers.bert.errors import ConfigError, TrainingError  # noqa: E402
from trainers.bert.run import run_dir  # noqa: E402
from trainers.bert.run.phases import Phase  # noqa: E402
from trainers.bert.run.progress import last_figures  # noqa: E402

WEIGHT_DECAY = 0.01
EXCLUDE = ["layer_norm", "bias"]  # the BERT recipe's exclusions, where allowed
WARMUP_RANGE = (0.005, 0.3)  # of the step cap; the paper's growth is capped at the top
RATE_RANGE = (-2.0, 2.0)  # log2 of the factor on the usual (sqrt-scaled) rate


def _lamb(learning_rate):
    return lamb_tf.LAMB(
        learning_rate=learning_rate, weight_decay=WEIGHT_DECAY, exclude_from_weight_decay=EXCLUDE
    )


def _lars(learning_rate):
    return lamb_tf.LARS(
        learning_rate=learning_rate, weight_decay=WEIGHT_DECAY, exclude_from_weight_decay=EXCLUDE
    )


def _adamw(learning_rate):
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=WEIGHT_DECAY)
    optimizer.exclude_from_weight_decay(var_names=EXCLUDE)
    return optimizer


def _keras_lamb(learning_rate):
    # Keras' Lamb has no exclusion list; its decay is decoupled (outside the ratio).
    return keras.optimizers.Lamb(learning_rate=learning_rate, weight_decay=WEIGHT_DECAY)


def _nesterov(learning_rate):
    optimizer = keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=0.9, nesterov=True, weight_decay=WEIGHT_DECAY
    )
    optimizer.exclude_from_weight_decay(var_names=EXCLUDE)
    return optimizer


# name: (label, factory, the centre of its learning-rate box at batch 32)
OPTIMIZERS = {
    "lamb": ("lamb_tf.LAMB", _lamb, 1e-2),
    "lars": ("lamb_tf.LARS", _lars, 10.0),
    "adamw": ("keras AdamW", _adamw, 1e-3),
    "keras_lamb": ("keras Lamb", _keras_lamb, 1e-2),
    "nesterov": ("Nesterov SGD", _nesterov, 0.1),
}


@dataclasses.dataclass(frozen=True)
class Size:
    """A study's scale: model, data shape, batches, cap, target."""

    model: str
    seq_length: int
    max_predictions: int
    batch_sizes: tuple
    micro_batch: int
    max_sequences: int
    target: float
    trials: int
    evals: int
    eval_steps: int
    repeat: tuple
    reference_batch: int  # where the optimizers' usual rates hold


SIZES = {
    # 2 CPU cores: about 45 minutes.
    "cpu": Size(
        "tiny", 32, 5, (16, 32, 64, 128, 256), 32, 25600, 0.08, 3, 40, 16,
        ("lamb@16", "lamb@64", "adamw@64"), 32,
    ),
    # The pipeline end to end in under 3 minutes (the test's).
    "quick": Size("tiny", 32, 5, (16, 64), 16, 1280, 0.03, 1, 2, 2, ("lamb@16",), 32),
    # One GPU or TPU: BERT-mini at sequence length 128 (not measured here).
    "accelerator": Size(
        "mini", 128, 20, (256, 512, 1024, 2048, 4096, 8192), 256, 819200, 0.30, 3, 25, 20,
        ("lamb@256", "lamb@2048", "adamw@2048"), 32,
    ),
}  # fmt: skip

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "/tmp/batch_scaling_study", "Tables, plot and runs go here.")
flags.DEFINE_enum("size", "cpu", list(SIZES), "The study's scale (see SIZES).")
flags.DEFINE_bool("quick", False, "Same as --size=quick.")
flags.DEFINE_list("batch_sizes", None, "Global batch sizes (default: the size's).")
flags.DEFINE_list("optimizers", None, "Subset of: " + ", ".join(OPTIMIZERS))
flags.DEFINE_integer("trials", None, "Runs per optimizer and batch size in the tuned protocol.")
flags.DEFINE_float("target", None, "Held-out masked-LM accuracy to reach.")
flags.DEFINE_integer("max_sequences", None, "Training sequences at which a run stops (a miss).")
flags.DEFINE_integer("micro_batch", None, "Sequences per replica per forward pass.")
flags.DEFINE_list("repeat", None, "Cells (optimizer@batch) whose best run is repeated.")
flags.DEFINE_enum(
    "corpus", None, ["python", "pydoc"], "python: help topics + standard-library docstrings."
)
flags.DEFINE_string("data_dir", None, "Where the data is made (default output_dir/data).")
flags.DEFINE_string("train_files", None, "Your TFRecords (google-research/bert schema) instead.")
flags.DEFINE_string("eval_files", None, "Held-out TFRecords for --train_files.")
flags.DEFINE_string("vocab_file", None, "The vocabulary of --train_files.")
flags.DEFINE_integer("seed", 0, "Of weights, dropout and input order; a repeat uses seed + 1.")
flags.DEFINE_string("tpu", None, "TPU name or address; 'local' on a TPU VM.")
flags.DEFINE_enum(
    "strategy", "auto", list(strategies.STRATEGIES), "tf.distribute strategy (as the trainer's)."
)


def _size():
    size = SIZES["quick" if FLAGS.quick else FLAGS.size]
    overrides = {
        "batch_sizes": FLAGS.batch_sizes and tuple(sorted(int(b) for b in FLAGS.batch_sizes)),
        "trials": FLAGS.trials,
        "target": FLAGS.target,
        "max_sequences": FLAGS.max_sequences,
        "micro_batch": FLAGS.micro_batch,
        "repeat": FLAGS.repeat and tuple(FLAGS.repeat),
    }
    size = dataclasses.replace(size, **{k: v for k, v in overrides.items() if v is not None})
    if size.trials < 1:
        raise ConfigError(f"--trials={size.trials}: each cell needs at least one run")
    if not 0 < size.target < 1:
        raise ConfigError(f"--target={size.target}: an accuracy in (0, 1)")
    for batch in size.batch_sizes:
        micro = min(size.micro_batch, batch)
        if batch % micro:
            raise ConfigError(
                f"--batch_sizes: {batch} is not a multiple of the micro-batch {micro} "
                "(--micro_batch)"
            )
        if size.max_sequences // batch < 1:
            raise ConfigError(
                f"--max_sequences={size.max_sequences} is less than one step of batch {batch}"
            )
    unknown = set(FLAGS.optimizers or ()) - set(OPTIMIZERS)
    if unknown:
        raise ConfigError(
            f"--optimizers: unknown {sorted(unknown)}; choose from {list(OPTIMIZERS)}"
        )
    return size


def _halton(index, base):
    """The `index`-th point of the van der Corput sequence in `base`."""
    point, fraction = 0.0, 1.0 / base
    while index:
        index, digit = divmod(index, base)
        point += digit * fraction
        fraction /= base
    return point


def tuned_settings(name, batch, size):
    """The tuned protocol's (learning rate, warmup fraction) trials of a
    cell: the same Halton points for every cell, in a box whose rate slides
    with sqrt(B)."""
    centre = OPTIMIZERS[name][2] * math.sqrt(batch / size.reference_batch)
    low, high = RATE_RANGE
    w_low, w_high = WARMUP_RANGE
    return [
        (
            centre * 2 ** (low + (high - low) * _halton(i, 2)),
            w_low * (w_high / w_low) ** _halton(i, 3),
        )
        for i in range(1, size.trials + 1)
    ]


def paper_settings(base, batch, first_batch):
    """The paper's protocol: the rate scaled by sqrt(B / B_0), the warmup
    fraction linearly with B (capped)."""
    growth = batch / first_batch
    fraction = min(WARMUP_RANGE[1], base["warmup_fraction"] * growth)
    return base["learning_rate"] * math.sqrt(growth), fraction


class Study:
    """Runs cells (cached in `output_dir/cells`) on one strategy."""

    def __init__(self, size, data, strategy):
        self.size, self.data, self.strategy = size, data, strategy
        self.folder = os.path.join(
            FLAGS.output_dir, "cells", f"{size.model}_seq{size.seq_length}_cap{size.max_sequences}"
        )

    def run(self, protocol, name, batch, learning_rate, warmup_fraction, seed):
        """One pretraining run to the target or the cap: its result."""
        size = self.size
        max_steps = size.max_sequences // batch
        warmup = round(warmup_fraction * max_steps)
        label = f"{name}_b{batch}_lr{learning_rate:.4g}_w{warmup}_s{seed}_t{size.target:g}"
        folder = os.path.join(self.folder, label)
        result_file = os.path.join(folder, "result.json")
        if os.path.exists(result_file):
            with open(result_file) as f:
                return {**json.load(f), "protocol": protocol}
        every = max(1, max_steps // size.evals)
        phase = Phase(
            seq_length=size.seq_length,
            max_predictions=size.max_predictions,
            global_batch_size=batch,
            steps=max_steps,
            warmup_steps=warmup,
            peak_learning_rate=learning_rate,
            power=1.0,
            train_files=self.data["train_files"],
            eval_files=self.data["eval_files"],
            micro_batch_size=min(size.micro_batch, batch),
        )
        os.makedirs(folder, exist_ok=True)
        start = time.perf_counter()
        with open(os.path.join(folder, "train.log"), "a") as log, contextlib.redirect_stdout(log):
            summary = train_lib.train(
                folder,
                phases=[phase],
                strategy=self.strategy,
                optimizer=OPTIMIZERS[name][1],
                model=size.model,
                steps_per_loop=every,
                checkpoint_every=None,
                keep_checkpoints=1,
                eval_every=every,
                eval_steps=size.eval_steps,
                target_mlm_accuracy=size.target,
                vocab_file=self.data["vocab_file"],
                data_dir=self.data["data_dir"],
                seed=seed,
                peak_flops=1e12,  # not measured: MFU plays no part here
                export=False,
                tensorboard=False,
            )
        result = {
            "optimizer": OPTIMIZERS[name][0],
            "batch_size": batch,
            "seed": seed,
            "learning_rate": learning_rate,
            "warmup_fraction": warmup_fraction,
            "warmup_steps": warmup,
            "max_steps": max_steps,
            "reached": bool(summary["stopped_early"]),
            "steps_to_target": summary["step"] if summary["stopped_early"] else None,
            "mlm_accuracy": summary["eval"]["mlm_accuracy"],
            "noise_scale": _last_noise_scale(folder),
            "wall_seconds": round(time.perf_counter() - start, 1),
        }
        run_dir.write_atomically(result_file, json.dumps(result, indent=1))  # whole or absent
        return {**result, "protocol": protocol}


def _last_noise_scale(folder):
    """B_simple of the run's last host loop, None where not measured."""
    return (last_figures(folder)["train"] or {}).get("noise_scale")


def _print(trial):
    t = trial
    outcome = (
        f"target at step {t['steps_to_target']:>5}"
        if t["reached"]
        else f"miss: {t['mlm_accuracy']:.4f} at the cap"
    )
    noise = "" if t["noise_scale"] is None else f"  B_noise {t['noise_scale']:.0f}"
    print(
        f"{t['protocol']:>6} {t['optimizer']:>13}  batch {t['batch_size']:>5}  "
        f"lr {t['learning_rate']:<9.4g} warmup {t['warmup_fraction']:.3f}  {outcome}"
        f"{noise}  {t['wall_seconds']:.0f} s",
        flush=True,
    )


def prepare_data(size):
    """The training and held-out records, and what they were made from."""
    if FLAGS.train_files:
        if not (FLAGS.eval_files and FLAGS.vocab_file):
            raise ConfigError("--train_files needs --eval_files and --vocab_file")
        return {
            "train_files": FLAGS.train_files,
            "eval_files": FLAGS.eval_files,
            "vocab_file": FLAGS.vocab_file,
            "data_dir": None,
        }, {"train_files": FLAGS.train_files}
    data_dir = FLAGS.data_dir or os.path.join(FLAGS.output_dir, "data")
    which = FLAGS.corpus or ("pydoc" if FLAGS.quick else "python")
    if which == "pydoc":
        return {
            "train_files": corpus.BUILTIN,
            "eval_files": None,
            "vocab_file": None,
            "data_dir": data_dir,
        }, {"corpus": "CPython 3.11.7 help topics (built in)"}
    return _python_docs(size, data_dir)


def _python_docs(size, data_dir):
    """Records of the help topics and this Python's standard-library
    docstrings, with the built-in vocabulary; made once per shape."""
    vocab = builtin.vocab_file(data_dir)
    folder = os.path.join(data_dir, f"python_docs_seq{size.seq_length}_pred{size.max_predictions}")
    os.makedirs(folder, exist_ok=True)
    described = {"corpus": "CPython 3.11.7 help topics (built in) + standard-library docstrings"}
    patterns = {}
    for split, topics in (("train", corpus.BUILTIN_TRAIN), ("heldout", corpus.BUILTIN_HELDOUT)):
        text = os.path.join(folder, f"docstrings_{split}.txt")
        output = os.path.join(folder, split)
        manifest = records.read_manifest(output)
        if manifest is None:
            print(f"Making {split} data from the standard library's docstrings in {output}")
            described[f"docstrings_{split}"] = docstrings.write(text, split)
            options = instances.Options(
                max_seq_length=size.seq_length,
                max_predictions_per_seq=size.max_predictions,
                dupe_factor=5,
            )
            create.create(
                f"{topics},{text}", output, options, vocab_file=vocab, num_shards=4, num_workers=1
            )
        else:
            described[f"docstrings_{split}"] = {"sha256": records.file_sha256(text)}
        patterns[split] = os.path.join(output, "*.tfrecord")
    described["python"] = sys.version.split()[0]
    return {
        "train_files": patterns["train"],
        "eval_files": patterns["heldout"],
        "vocab_file": vocab,
        "data_dir": None,
    }, described


def _repeats(size, names):
    cells = []
    for text in size.repeat:
        name, _, batch = text.partition("@")
        if name not in OPTIMIZERS or not batch.isdigit():
            raise ConfigError(f"--repeat: {text!r} is not optimizer@batch")
        if name in names and int(batch) in size.batch_sizes:
            cells.append((name, int(batch)))
    return cells


def main(argv):
    del argv
    stack.require("matplotlib", ["plots"], "tools/batch_scaling_study.py (its batch_scaling.png)")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")  # each run traces its own steps: retracing is expected
    size = _size()
    names = FLAGS.optimizers or list(OPTIMIZERS)
    repeats = _repeats(size, names)
    batches = size.batch_sizes
    first = batches[0]
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    runs = len(names) * (len(batches) * size.trials + len(batches) - 1) + len(repeats)
    print(
        f"batch sizes {list(batches)}, optimizers {names}, {size.trials} trials per cell, "
        f"target {size.target}, cap {size.max_sequences} sequences; at most {runs} runs; "
        f"results in {FLAGS.output_dir}",
        flush=True,
    )
    if size.max_sequences // batches[-1] < 100:
        print(f"note: fewer than 100 updates at batch {batches[-1]} before the cap", flush=True)
    data, described = prepare_data(size)
    study = Study(size, data, strategies.make_strategy(FLAGS.strategy, FLAGS.tpu))
    trials, results = [], {}

    def cell(protocol, name, batch, settings, seed=FLAGS.seed):
        found = [study.run(protocol, name, batch, rate, warmup, seed) for rate, warmup in settings]
        for trial in found:
            _print(trial)
        trials.extend(found)
        best = report.best(found)
        results.setdefault((protocol, OPTIMIZERS[name][0]), []).append(best)
        return best

    # B_0 first: the target must be reachable there, and it is the paper's base.
    bases = {name: cell("tuned", name, first, tuned_settings(name, first, size)) for name in names}
    missed = [n for n, b in bases.items() if not b["reached"]]
    if missed:
        detail = ", ".join(f"{OPTIMIZERS[n][0]} {bases[n]['mlm_accuracy']:.4f}" for n in missed)
        raise TrainingError(
            f"target {size.target} not reached at batch {first} within {size.max_sequences} "
            f"sequences in {size.trials} trial(s) (best held-out accuracy: {detail}): the "
            "target is unreachable at the smallest batch, so the study stops here; lower "
            "--target or raise --max_sequences"
        )
    for name in names:
        results.setdefault(("paper", OPTIMIZERS[name][0]), []).append(bases[name])
        for batch in batches[1:]:
            cell("tuned", name, batch, tuned_settings(name, batch, size))
            cell("paper", name, batch, [paper_settings(bases[name], batch, first)])
    repeated = []
    for name, batch in repeats:
        best = next(c for c in results[("tuned", OPTIMIZERS[name][0])] if c["batch_size"] == batch)
        rate, warmup = best["learning_rate"], best["warmup_fraction"]
        again = study.run("repeat", name, batch, rate, warmup, FLAGS.seed + 1)
        _print(again)
        trials.append(again)
        repeated += [best, again]
    perfect = min(bases.values(), key=lambda b: b["steps_to_target"])["steps_to_target"]
    settings = {
        "model": size.model,
        "sequence length": size.seq_length,
        "target": size.target,
        "cap (sequences)": size.max_sequences,
        "micro-batch": size.micro_batch,
        "trials per tuned cell": size.trials,
        "perfect_steps": perfect,
        **described,
    }
    _write(results, trials, repeated, settings)


def _write(results, trials, repeated, settings):
    out = FLAGS.output_dir
    rows = [dict(c, protocol=p) for (p, _), cells in results.items() for c in cells]
    report.write_csv(os.path.join(out, "results.csv"), rows)
    report.write_csv(os.path.join(out, "trials.csv"), trials)
    with open(os.path.join(out, "corpus.json"), "w") as f:
        json.dump(settings, f, indent=1)
    table = report.tables(results, repeated, settings)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table)
    report.plot(results, settings, os.path.join(out, "batch_scaling.png"))
    print(table)
    print(f"written: results.md, results.csv, trials.csv, batch_scaling.png in {out}")


if __name__ == "__main__":
    cli.run(main)
