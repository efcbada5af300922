"""Pretraining runs as the trainer's tests make them: the tiny model on the
built-in data (the session's `builtin_data_dir`, tests/conftest.py, where
`builtin.shards` makes each shape once), with settings small enough for
CPUs. A test states only what it changes:

    runs.train(tmp_path, builtin_data_dir)  # two_phases(), SETTINGS
    runs.train(tmp_path, builtin_data_dir, [runs.phase(steps=2)], export=False)

A file whose runs all change the same settings names them once, e.g.
`_train = functools.partial(runs.train, export=False)` (a call may still
pass any of them again)."""

import copy

from trainers.bert import train as trainer
from trainers.bert.run.phases import Phase

# The built-in data's two shapes, (seq_length, max_predictions): the
# short one of `phase` and the long one of `long_phase`.
SEQ_LENGTH, MAX_PREDICTIONS = 32, 5
LONG_SEQ_LENGTH, LONG_MAX_PREDICTIONS = 64, 10

NO_DROPOUT = {"dropout": 0.0}

# What `train` passes unless told otherwise; the trainer's defaults for the
# rest (clipping at 1.0, the encoder exported, ...).
SETTINGS = dict(
    # Runs that must agree (resumed, on two devices, on two engines) then
    # differ by float32 rounding only.
    model_overrides=NO_DROPOUT,
    steps_per_loop=2,
    checkpoint_every=2,
    eval_steps=1,
    peak_flops=1e11,  # given, so no matmul is timed to measure it
    tensorboard=False,
)


def phase(**overrides):
    """A phase of the short shape: 4 steps of batch 8 at a peak learning
    rate of 1e-2, no warm-up; `Phase`'s defaults otherwise (the built-in
    data, the whole per-replica batch in one pass). `overrides`: any
    `Phase` field."""
    settings = dict(
        seq_length=SEQ_LENGTH,
        max_predictions=MAX_PREDICTIONS,
        global_batch_size=8,
        steps=4,
        peak_learning_rate=1e-2,
    )
    return Phase(**{**settings, **overrides})


def long_phase(**overrides):
    """A phase of the long shape: 2 steps of batch 4 at a peak learning rate
    of 5e-3, no warm-up; otherwise as `phase`."""
    settings = dict(
        seq_length=LONG_SEQ_LENGTH,
        max_predictions=LONG_MAX_PREDICTIONS,
        global_batch_size=4,
        steps=2,
        peak_learning_rate=5e-3,
    )
    return Phase(**{**settings, **overrides})


def two_phases(reset_optimizer=False, **first):
    """The two-phase schedule, 10 steps: 6 of the short shape, each update
    of two micro-batches of 4, then 4 of the long shape, each phase warming
    up over its first 2 steps. `first`: `Phase` fields of the first phase;
    `reset_optimizer`: the second's."""
    return [
        phase(**{**dict(steps=6, warmup_steps=2, micro_batch_size=4), **first}),
        long_phase(steps=4, warmup_steps=2, reset_optimizer=reset_optimizer),
    ]


def train(model_dir, data_dir, phases=None, **settings):
    """`trainers.bert.train.train` in `model_dir` through `phases` (None:
    `two_phases()`), the built-in data made in or read from `data_dir`
    (None: none given, as for phases of other files), with `SETTINGS` and,
    over them, `settings` (any of train's keyword arguments); returns its
    summary."""
    phases = two_phases() if phases is None else phases
    settings = {**copy.deepcopy(SETTINGS), **settings}
    return trainer.train(str(model_dir), phases=phases, data_dir=data_dir, **settings)
