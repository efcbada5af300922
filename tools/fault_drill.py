"""Fault drill: kill the trainer at random steps, resume, compare.

    python tools/fault_drill.py                   # 4 faults, about 2 minutes on 2 cores
    python tools/fault_drill.py --faults=10 --seed=3 --signals=kill

Runs the tiny CPU config (shortened by bindings to 24 + 12 steps,
checkpoints every 6) once without interruption, then again with N faults:
each start of the trainer is sent SIGKILL or SIGTERM (seeded choice) once
its log passes a seeded random step, and the next start must resume from
the newest checkpoint. At the end the final weights and optimizer state of
both runs are compared value by value. The last line reads

    faults injected: N, survived: N, steps lost beyond the last checkpoint: 0,
    final weights identical: yes

(on one line); the exit status is 0 only if all of that holds and every
faulted start exited as its signal should (143 after SIGTERM).
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import tensorflow as tf
from absl import app, flags

from trainers.bert.preemption import EXIT_STATUS
from trainers.bert.tf_engine import checkpoints

FLAGS = flags.FLAGS
flags.DEFINE_integer("faults", 4, "Faults to inject.")
flags.DEFINE_integer("seed", 0, "Seeds the fault steps and signals.")
flags.DEFINE_list("signals", ["kill", "term"], "Signals to draw from: kill, term.")
flags.DEFINE_string("work_dir", None, "Where the two runs go (default: a temporary folder).")
flags.DEFINE_string("data_dir", None, "Built-in data, made on first use (default: work_dir/data).")
flags.DEFINE_float("timeout", 600, "Seconds any one trainer process may take.")

PHASE_STEPS = (24, 12)
BINDINGS = [
    f"phase1/Phase.steps = {PHASE_STEPS[0]}",
    "phase1/Phase.warmup_steps = 4",
    f"phase2/Phase.steps = {PHASE_STEPS[1]}",
    "phase2/Phase.warmup_steps = 2",
    "train.steps_per_loop = 2",
    "train.checkpoint_every = 6",
    "train.keep_checkpoints = 20",
    "train.eval_every = None",
    "train.eval_steps = 1",
    "train.export = False",
    "train.tensorboard = False",
]
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM}


def _command(model_dir, data_dir):
    bindings = [f"--gin_param={b}" for b in [*BINDINGS, f'train.data_dir = "{data_dir}"']]
    return [
        sys.executable,
        "-m",
        "trainers.bert.main",
        "--gin_file=gin_configs/tiny_cpu.gin",
        *bindings,
        f"--model_dir={model_dir}",
    ]


def _last_step(model_dir, offset):
    """The newest step in log.jsonl past byte `offset` (what this start wrote)."""
    path = os.path.join(model_dir, "log.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        f.seek(offset)
        lines = f.read().splitlines()
    steps = []
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass  # a line still being written, or cut by a SIGKILL
    return max(steps, default=0)


def _checkpoint_step(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


def _run(model_dir, data_dir, kill_after=None, signal_name=None):
    """Runs the trainer; with `kill_after`, signals it once the log passes
    that step. Returns (exit status, its output, step at the signal)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    log = os.path.join(model_dir, "log.jsonl")
    offset = os.path.getsize(log) if os.path.exists(log) else 0
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            _command(model_dir, data_dir), cwd=root, stdout=output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + FLAGS.timeout
        signalled_at = None
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"trainer took over {FLAGS.timeout} s in {model_dir}")
            if kill_after is not None and signalled_at is None:
                step = _last_step(model_dir, offset)
                if step >= kill_after:
                    process.send_signal(SIGNALS[signal_name])
                    signalled_at = step
            time.sleep(0.05)
        output.seek(0)
        return process.returncode, output.read(), signalled_at


def _resumed_step(output):
    for line in output.splitlines():
        if line.startswith("resuming from"):
            return int(line.rsplit("step ", 1)[1].rstrip(")"))
    return 0


def _final_state(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return checkpoints.saved_state(path)


def main(argv):
    del argv
    rng = random.Random(FLAGS.seed)
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="fault_drill_")
    data_dir = FLAGS.data_dir or os.path.join(work, "data")
    reference, drilled = os.path.join(work, "uninterrupted"), os.path.join(work, "drilled")
    total = sum(PHASE_STEPS)

    print(f"uninterrupted run in {reference}", flush=True)
    status, output, _ = _run(reference, data_dir)
    if status != 0:
        raise RuntimeError(f"the uninterrupted run failed:\n{output[-3000:]}")

    # Spread over both phases, short of the end so each lands while it trains.
    targets = sorted(rng.choices(range(2, total - 4), k=FLAGS.faults))
    survived, lost, newest, clean_exits = 0, 0, None, True
    for fault in range(FLAGS.faults + 1):
        last_run = fault == FLAGS.faults
        target = None if last_run else targets[fault]
        name = None if last_run else rng.choice(FLAGS.signals)
        status, output, at = _run(drilled, data_dir, kill_after=target, signal_name=name)
        if newest is not None:
            # This start follows a fault: it must resume at the newest checkpoint.
            resumed_at = _resumed_step(output)
            lost += max(0, newest - resumed_at)
            survived += int(resumed_at == newest)
        if last_run:
            if status != 0:
                raise RuntimeError(f"the final resumed run failed:\n{output[-3000:]}")
            break
        newest = _checkpoint_step(drilled)
        expected_status = EXIT_STATUS if name == "term" else -signal.SIGKILL
        clean_exits &= status == expected_status
        print(
            f"fault {fault + 1}: SIG{name.upper()} at step {at} (target {target}), exit status "
            f"{status} (expected {expected_status}), newest checkpoint at step {newest}",
            flush=True,
        )
    expected, got = _final_state(reference), _final_state(drilled)
    # Weights and optimizer state, compared value by value.
    difference = float("inf")
    if expected.keys() == got.keys():
        difference = max(float(abs(expected[k] - got[k]).max()) for k in expected)
    identical = difference <= 1e-6
    print(f"largest difference in weights and optimizer state: {difference:.3g}")
    print(
        f"faults injected: {FLAGS.faults}, survived: {survived}, steps lost beyond the last "
        f"checkpoint: {lost}, final weights identical: {'yes' if identical else 'no'}"
    )
    if not clean_exits:
        print("a faulted run did not end with the expected exit status")
    return 0 if identical and clean_exits and survived == FLAGS.faults and lost == 0 else 1


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
