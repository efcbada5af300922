"""What a run reports: a progress line per host loop, TensorBoard scalars
and trust-ratio histograms, and the same figures as JSON lines
(`model_dir/log.jsonl`)."""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from trainers.bert.model import tasks
from trainers.bert.run import noise_scale

LOG = "log.jsonl"


class Progress:
    """`write=False` (workers other than the chief): print only. `shown`:
    the (figure, label) pairs of the progress line besides the loss (a
    task's `shown`)."""

    def __init__(
        self, model_dir, num_phases, tensorboard=True, stream=None, write=True, shown=None
    ):
        self.num_phases = num_phases
        self.shown = tasks.PRETRAINING.shown if shown is None else shown
        self.stream = stream or sys.stdout
        self._log = None
        if write:
            # tf.io.gfile: model_dir may be an object store (gs://) on TPU.
            path = os.path.join(model_dir, LOG)
            torn = tf.io.gfile.exists(path) and not _ends_with_newline(path)
            self._log = tf.io.gfile.GFile(path, "a")
            if torn:  # a run killed mid-line: end that line, keep ours whole
                self._log.write("\n")
        self._writers = {}
        if tensorboard and write:
            for kind in ("train", "eval"):
                path = os.path.join(model_dir, "tensorboard", kind)
                self._writers[kind] = tf.summary.create_file_writer(path)
        self._phase_start = None
        self._later_steps = 0.0

    def start_phase(self, plan, step, later_steps=0.0):
        """`later_steps`: the work of the phases after this one, in steps of
        this one (for the whole run's ETA)."""
        self._phase_start = (time.perf_counter(), step)
        self._later_steps = later_steps
        phase = plan.phase
        self._print(
            f"phase {plan.index + 1}/{self.num_phases}: sequence length {phase.seq_length}, "
            f"global batch {phase.global_batch_size} "
            f"({plan.per_replica_batch} per replica, {plan.accumulation_steps} micro-batches "
            f"of {plan.micro_batch}), steps {step - plan.first_step}/{phase.steps} done, "
            f"peak learning rate {phase.peak_learning_rate:g} after {phase.warmup_steps} warmup"
        )

    def train(self, plan, step, figures, trust_ratios=None):
        """`figures`: loss, accuracies, learning_rate, gradient_norm,
        sequences_per_second, tokens_per_second, mfu (or None), skipped,
        and the gradient noise scale's figures when measured."""
        done = step - plan.first_step
        total = plan.phase.steps
        started, start_step = self._phase_start
        rate = (step - start_step) / max(time.perf_counter() - started, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("nan")
        run_eta = (total - done + self._later_steps) / rate if rate > 0 else float("nan")
        width = 20
        filled = int(width * done / total)
        mfu = figures.get("mfu")
        self._print(
            f"phase {plan.index + 1} [{'#' * filled}{'.' * (width - filled)}] "
            f"{done}/{total}  loss {figures['loss']:.4f}  "
            + "".join(f"{label} {figures[name]:.3f}  " for name, label in self.shown)
            + f"lr {figures['learning_rate']:.3g}  |g| {figures['gradient_norm']:.3g}"
            + noise_scale.describe(figures)
            + f"  {figures['sequences_per_second']:.1f} seq/s  "
            f"{figures['tokens_per_second'] / 1000:.1f}k tok/s"
            + (f"  MFU {100 * mfu:.1f}%" if mfu is not None else "")
            + f"  ETA {_duration(eta)}"
            + (f" (run {_duration(run_eta)})" if self._later_steps else "")
            + (f"  skipped {figures['skipped']}" if figures.get("skipped") else "")
        )
        record = {"kind": "train", "phase": plan.index + 1, "step": step, **figures}
        if trust_ratios is not None and len(trust_ratios):
            record["trust_ratio_min"] = float(np.min(trust_ratios))
            record["trust_ratio_max"] = float(np.max(trust_ratios))
        self._write(record, "train", step, trust_ratios)

    def evaluate(self, plan, step, figures):
        self._print(
            f"eval   phase {plan.index + 1} step {step}: loss {figures['loss']:.4f}"
            + "".join(f"  {label} {figures[name]:.4f}" for name, label in self.shown)
        )
        self._write(
            {"kind": "eval", "phase": plan.index + 1, "step": step, **figures}, "eval", step
        )

    def result(self, name, step, figures):
        """The scores of evaluation set `name` (fine-tuning's predictions)."""
        self._print(
            f"{name}  step {step}: " + "  ".join(f"{k} {v:.4f}" for k, v in figures.items())
        )
        self._write(
            {"kind": "eval", "set": name, "step": step, **figures}, "eval", step, prefix=name
        )

    def message(self, text):
        self._print(text)

    def close(self):
        if self._log:
            self._log.close()
        for writer in self._writers.values():
            writer.close()

    def _write(self, record, kind, step, trust_ratios=None, prefix=None):
        if self._log is None:
            return
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()
        writer = self._writers.get(kind)
        if writer is None:
            return
        with writer.as_default(step=step):
            for name, value in record.items():
                if name not in ("kind", "step") and isinstance(value, (int, float)):
                    tf.summary.scalar(f"{prefix}/{name}" if prefix else name, value)
            if trust_ratios is not None and len(trust_ratios):
                tf.summary.histogram("trust_ratios", trust_ratios)
        writer.flush()

    def _print(self, text):
        print(text, file=self.stream, flush=True)


def last_figures(model_dir):
    """{"train": figures, "eval": figures} of the last training and
    evaluation records in a run's log (None where it has none): what a
    finished run, started again, reports without training."""
    path = os.path.join(model_dir, LOG)
    found = {"train": None, "eval": None}
    if not tf.io.gfile.exists(path):
        return found
    with tf.io.gfile.GFile(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a killed run
            if record.get("kind") in found and "set" not in record:
                found[record["kind"]] = {
                    k: v for k, v in record.items() if k not in ("kind", "phase", "step")
                }
    return found


def _duration(seconds):
    if not np.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _ends_with_newline(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        size = f.size()
        if size == 0:
            return True
        f.seek(size - 1)
        return f.read(1) == b"\n"
