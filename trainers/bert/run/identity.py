"""A run's identity: the configuration that shapes its saved state, kept in
`model_dir/run.json` beside the checkpoints.

A restart on the same `model_dir` must describe the same run: the same
task (pretraining, or a fine-tuning task with its encoder and data), the
same engine (their checkpoints differ), model shape and vocabulary, precision,
optimizer class and state, and, for every phase started so far, the same
sequence length, global batch and masked-LM predictions (the saved input
position and the step count depend on them), and the same steps for the
phases already finished (they place the phase boundaries). Anything else may
change on a restart: evaluation and checkpoint cadence, `steps_per_loop`,
learning rates and warmups, dropout, recovery settings, the steps of the
running phase (not below what is done) and everything about later phases,
including phases added at the end.
"""

import dataclasses
import json
import os

import tensorflow as tf

from trainers.bert.errors import ConfigError
from trainers.bert.run import run_dir

RUN = "run.json"
PHASE_SHAPE = ("seq_length", "global_batch_size", "max_predictions")
PRETRAINING = {"name": "pretraining"}


def describe(config, vocab_sha256, plans, precision, optimizer, engine="tf", task=None):
    """The identity of a run as a JSON-able dict. `task`: what a fine-tuning
    run trains (a JSON-able dict); None: pretraining."""
    optimizer_class = type(optimizer)
    return {
        "engine": engine,
        "task": task or PRETRAINING,
        "model": {k: v for k, v in dataclasses.asdict(config).items() if k != "dropout"},
        "vocabulary_sha256": vocab_sha256,
        "precision": precision,
        "optimizer": {
            "class": f"{optimizer_class.__module__}.{optimizer_class.__qualname__}",
            "state_variables": len(optimizer.variables),
        },
        "phases": [
            {**{name: getattr(p.phase, name) for name in PHASE_SHAPE}, "steps": p.phase.steps}
            for p in plans
        ],
    }


def read(model_dir):
    """The identity stored in `model_dir`, or None."""
    path = os.path.join(model_dir, RUN)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write(model_dir, identity):
    """Writes run.json through a temporary name (never half written)."""
    run_dir.write_atomically(
        os.path.join(model_dir, RUN), json.dumps(identity, indent=1, sort_keys=True)
    )


def differences(saved, current, checkpoint):
    """What differs between the run's `saved` identity and the `current`
    one, given its newest `checkpoint` (step and phase): a list of
    "what: in the run, now" strings; empty when the restart may resume."""
    found = []
    for part in ("model", "optimizer"):
        for key in sorted(set(saved[part]) | set(current[part])):
            _compare(found, f"{part}.{key}", saved[part].get(key), current[part].get(key))
    for key in ("vocabulary_sha256", "precision"):
        _compare(found, key, saved[key], current[key])
    # Runs saved before engines had a name are the TensorFlow engine's.
    _compare(found, "engine", saved.get("engine", "tf"), current.get("engine", "tf"))
    # Runs saved before tasks had a name are pretraining runs.
    _compare_tasks(found, saved.get("task", PRETRAINING), current.get("task", PRETRAINING))
    if checkpoint is None:
        return found
    done = checkpoint.phase  # phases before this one are finished
    if len(current["phases"]) <= done:
        found.append(
            f"phases: the run is in phase {done + 1}, this configuration has "
            f"{len(current['phases'])}"
        )
        return found
    first_step = 0
    for index in range(done + 1):
        was, now = saved["phases"][index], current["phases"][index]
        names = PHASE_SHAPE + (("steps",) if index < done else ())
        for name in names:
            _compare(found, f"phase {index + 1} {name}", was[name], now[name])
        first_step += now["steps"] if index < done else 0
    steps = current["phases"][done]["steps"]
    if checkpoint.step - first_step > steps:
        found.append(
            f"phase {done + 1} steps: {checkpoint.step - first_step} done in the run, {steps} now"
        )
    return found


def check(model_dir, saved, current, checkpoint):
    """Stops with ConfigError, before anything is written, when the run
    `saved` in `model_dir` (None: none recorded) is another one than
    `current` describes."""
    found = differences(saved, current, checkpoint) if saved is not None else []
    _refuse(model_dir, found)


def check_task(model_dir, task):
    """`check` of the task alone, possible before the run's state exists:
    a fine-tuning run refuses a model_dir of another task, encoder or data
    before it writes its records there."""
    saved = read(model_dir)
    if saved is None:
        return
    found = []
    _compare_tasks(found, saved.get("task", PRETRAINING), task)
    _refuse(model_dir, found)


def _refuse(model_dir, found):
    if found:
        raise ConfigError(
            f"model_dir {model_dir!r} holds a run with another configuration "
            f"({'; '.join(found)}). Nothing was written. To resume that run, use its settings "
            f"(its operative_config.gin); to start another, give a new model_dir"
        )


def _compare_tasks(found, was, now):
    for key in sorted(set(was) | set(now)):
        _compare(found, f"task.{key}", was.get(key), now.get(key))


def _compare(found, what, was, now):
    if was != now:
        found.append(f"{what}: {was!r} in the run, {now!r} now")
