"""Fault drill: kill, interrupt and misconfigure the trainer, resume, compare.

    python tools/fault_drill.py                   # 4 faults, about 2 minutes on 2 cores
    python tools/fault_drill.py --faults=10 --seed=3 --kinds=kill,int
    python tools/fault_drill.py --strategy=tpu_rehearsal   # the TPU branches
    python tools/fault_drill.py --engine=jax               # the JAX engine

Runs the tiny CPU config (shortened by bindings to 24 + 12 steps,
checkpoints every 6) once without interruption, then again with N faults of
these kinds (a seeded choice):

    kill    SIGKILL once the log passes a seeded random step
    term    SIGTERM there (a preemption notice): checkpoint, exit 143
    int     Ctrl-C (SIGINT) there: checkpoint, exit 130
    config  a restart with another model (train.model = "mini"): refused
            with exit status 2 before anything is written
    data    a restart with bytes of a training shard flipped (same size):
            refused with exit status 1 naming the shard, before anything
            is written (the shard is put back afterwards)

The first fault is a signal (the others need a run to restart). After every
fault the next training start must resume from the newest checkpoint; at the
end the final weights and optimizer state of both runs are compared value by
value. The last line reads

    faults injected: N, survived: N, steps lost beyond the last checkpoint: 0,
    final weights identical: yes

(on one line); the exit status is 0 only if all of that holds and every
faulted start exited as it should, leaving the run's files as they were for
the refused restarts.
"""

import glob
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from trainers import stack
from trainers.bert import cli

cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from trainers.bert.engines.tf_engine import checkpoints as tf_checkpoints  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("faults", 4, "Faults to inject.")
flags.DEFINE_integer("seed", 0, "Seeds the fault steps and signals.")
flags.DEFINE_list(
    "kinds", ["kill", "term", "int", "config", "data"], "Faults to draw from (see above)."
)
flags.DEFINE_string("work_dir", None, "Where the two runs go (default: a temporary folder).")
flags.DEFINE_string("data_dir", None, "Built-in data, made on first use (default: work_dir/data).")
flags.DEFINE_string(
    "strategy",
    "auto",
    "The trainer's --strategy for both runs; tpu_rehearsal drills the TPU branches (input "
    "per replica, a resume skips the batches done instead of restoring an input position).",
)
flags.DEFINE_enum(
    "engine", "tf", ["tf", "jax"], "The trainer's engine (jax: with KERAS_BACKEND=jax)."
)
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
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT}
# What each fault's start must exit with (a signal's: -N when it kills).
EXIT_STATUS = {"kill": -signal.SIGKILL, "term": 143, "int": 130, "config": 2, "data": 1}
CHANGED_CONFIG = 'train.model = "mini"'
# The built-in data the tiny config's two phases read (sequence length and
# predictions), where the data faults corrupt a shard.
PHASE_DATA = ("seq64_pred10", "seq128_pred20")


def _command(model_dir, data_dir, extra=()):
    bindings = [f"--gin_param={b}" for b in [*BINDINGS, f'train.data_dir = "{data_dir}"', *extra]]
    return [
        sys.executable,
        "-m",
        "trainers.bert.main",
        "--gin_file=gin_configs/tiny_cpu.gin",
        f"--engine={FLAGS.engine}",
        *([f"--strategy={FLAGS.strategy}"] if FLAGS.engine == "tf" else []),
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


def _latest_checkpoint(model_dir):
    """(path, step) of the newest complete checkpoint; (None, 0) if none."""
    if FLAGS.engine == "jax":
        from trainers.bert.engines.jax_engine.checkpoints import Checkpointer

        latest = Checkpointer(model_dir).latest()
        return (latest.path, latest.step) if latest else (None, 0)
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return (path, int(path.rsplit("-", 1)[1])) if path else (None, 0)


def _run(model_dir, data_dir, kill_after=None, signal_name=None, extra=()):
    """Runs the trainer; with `kill_after`, signals it once the log passes
    that step. Returns (exit status, its output, step at the signal)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    log = os.path.join(model_dir, "log.jsonl")
    offset = os.path.getsize(log) if os.path.exists(log) else 0
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            _command(model_dir, data_dir, extra),
            cwd=root,
            env=dict(os.environ, KERAS_BACKEND="jax" if FLAGS.engine == "jax" else "tensorflow"),
            stdout=output,
            stderr=subprocess.STDOUT,
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


def _digests(folder):
    """{path: sha256} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[path] = hashlib.sha256(f.read()).hexdigest()
    return found


def _refused_restart(kind, drilled, data_dir, rng):
    """A restart that must be refused before anything is written: returns
    (what was done, exit status, whether the output names the cause, whether
    the run's files are unchanged)."""
    before = _digests(drilled)
    if kind == "config":
        status, output, _ = _run(drilled, data_dir, extra=[CHANGED_CONFIG])
        return (
            CHANGED_CONFIG,
            status,
            "another configuration" in output,
            _digests(drilled) == before,
        )
    shards = [
        path
        for folder in PHASE_DATA
        for path in sorted(glob.glob(os.path.join(data_dir, folder, "train", "*.tfrecord")))
    ]
    shard = rng.choice(shards)
    with open(shard, "rb") as f:
        original = f.read()
    flipped = bytearray(original)
    middle = len(flipped) // 2
    flipped[middle : middle + 16] = bytes(b ^ 0xFF for b in flipped[middle : middle + 16])
    try:
        with open(shard, "wb") as f:
            f.write(flipped)
        status, output, _ = _run(drilled, data_dir)
    finally:
        with open(shard, "wb") as f:
            f.write(original)
    what = f"bytes flipped in {os.path.relpath(shard, data_dir)}"
    return what, status, shard in output, _digests(drilled) == before


def _final_state(model_dir):
    path, _ = _latest_checkpoint(model_dir)
    if FLAGS.engine == "jax":
        from trainers.bert.engines.jax_engine.checkpoints import saved_state

        return saved_state(path)
    return tf_checkpoints.saved_state(path)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax reports every read at INFO
    if FLAGS.engine == "jax":  # here, not as a failed first run
        stack.require_jax_engine("--engine=jax")
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
    pending = 0  # faults whose survival the next training start shows
    for fault in range(FLAGS.faults + 1):
        last_run = fault == FLAGS.faults
        target = None if last_run else targets[fault]
        kinds = FLAGS.kinds if newest is not None else [k for k in FLAGS.kinds if k in SIGNALS]
        kind = None if last_run else rng.choice(kinds)
        if kind in ("config", "data"):
            # A generator of its own for the shard: the faults drawn stay the
            # same whatever else lies in data_dir.
            shard_rng = random.Random(f"{FLAGS.seed}-{fault}")
            what, status, named, unchanged = _refused_restart(kind, drilled, data_dir, shard_rng)
            clean_exits &= status == EXIT_STATUS[kind] and named and unchanged
            pending += 1
            print(
                f"fault {fault + 1}: restart with {what}, exit status {status} (expected "
                f"{EXIT_STATUS[kind]}), cause named: {'yes' if named else 'no'}, run files "
                f"unchanged: {'yes' if unchanged else 'no'}",
                flush=True,
            )
            continue
        status, output, at = _run(drilled, data_dir, kill_after=target, signal_name=kind)
        if pending:
            # This start follows faults: it must resume at the newest checkpoint.
            resumed_at = _resumed_step(output)
            lost += max(0, newest - resumed_at)
            survived += pending if resumed_at == newest else 0
        if last_run:
            if status != 0:
                raise RuntimeError(f"the final resumed run failed:\n{output[-3000:]}")
            break
        _, newest = _latest_checkpoint(drilled)
        pending = 1
        clean_exits &= status == EXIT_STATUS[kind]
        print(
            f"fault {fault + 1}: SIG{signal.Signals(SIGNALS[kind]).name[3:]} at step {at} "
            f"(target {target}), exit status {status} (expected {EXIT_STATUS[kind]}), newest "
            f"checkpoint at step {newest}",
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
        print("a faulted start did not end as it should (see its line above)")
    return 0 if identical and clean_exits and survived == FLAGS.faults and lost == 0 else 1


if __name__ == "__main__":
    cli.run(lambda argv: sys.exit(main(argv)))
