"""A phase's input: its files checked before any compute, and the batches
one worker (or one replica) reads.

A phase's global batch is read by `pipelines` input pipelines, each reading
its own share of the files and giving an equal slice of every global batch.
A worker runs `pipelines / workers` of them and gets the concatenation of
their slices, its part of the global batch: the batches depend only on the
number of pipelines, not on how replicas are spread over workers.

`plan` is the training program's batch plan of a phase (its `phase`,
`index`, per-replica and micro batch sizes); nothing here imports it.
"""

import contextlib
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from trainers.bert.data.input import pipeline
from trainers.bert.data.patterns import match_files
from trainers.bert.data.shards import builtin, corpus
from trainers.bert.errors import ConfigError, DataError, tensorflow_message


class PhaseFiles(NamedTuple):
    train: list
    eval: list | None  # None: no evaluation
    names: dict  # the records' feature names (pipeline.V1_NAMES or V2_NAMES)


def phase_files(phase, data_dir, vocab_file):
    """The phase's training and held-out files, checked (built-in data is
    made in `data_dir` on first use)."""
    train_pattern, eval_pattern = phase.train_files, phase.eval_files
    if train_pattern == corpus.BUILTIN:
        train_pattern, builtin_eval = builtin.shards(
            data_dir, phase.seq_length, phase.max_predictions
        )
        eval_pattern = eval_pattern or builtin_eval
    train_files = match_files(train_pattern)
    names = pipeline.validate(
        train_files,
        phase.seq_length,
        phase.max_predictions,
        vocab_file,
        pattern=f"train_files {train_pattern!r}",
    )
    eval_files = None
    if eval_pattern:
        eval_files = match_files(eval_pattern)
        eval_names = pipeline.validate(
            eval_files,
            phase.seq_length,
            phase.max_predictions,
            vocab_file,
            pattern=f"eval_files {eval_pattern!r}",
        )
        if eval_names != names:
            raise DataError(f"{eval_pattern}: other feature names than {train_pattern}")
    return PhaseFiles(train_files, eval_files, names)


def check_input_pipelines(pipelines, workers, plans):
    """The number of training input pipelines (None: one per worker)."""
    if pipelines is None:
        return None
    if pipelines % workers:
        raise ConfigError(
            f"train.input_pipelines={pipelines!r} must be a positive multiple of the "
            f"{workers} worker(s)"
        )
    for plan in plans:
        if plan.phase.global_batch_size % pipelines:
            raise ConfigError(
                f"train.input_pipelines={pipelines}: phase {plan.index + 1}'s "
                f"global_batch_size {plan.phase.global_batch_size} does not split evenly "
                "among them"
            )
    return int(pipelines)


def first_unreadable_record(files):
    """After a read error in training: "FILE: what is wrong (at which byte
    offset)" for the first file with an unreadable record, or None. Each
    file is read through in TensorFlow's record reader (no parsing)."""
    for path in files:
        try:
            tf.data.TFRecordDataset(path).reduce(0, lambda count, _: count + 1)
        except tf.errors.OpError as error:
            return f"{path}: {tensorflow_message(error)}"
    return None


@contextlib.contextmanager
def read_errors_named(files):
    """A record that cannot be read (data without a manifest to check it
    against before training) stops with `DataError` naming its file."""
    try:
        yield
    except tf.errors.DataLossError as error:
        found = first_unreadable_record(files) or tensorflow_message(error)
        raise DataError(f"unreadable input record, {found}") from None


def dataset(plan, files, names, batch_size, context=None, seed=0, shuffle=True, **kwargs):
    """The phase's batches of `batch_size` for the input pipeline of
    `context` (a `tf.distribute.InputContext`; None: the only one)."""
    phase = plan.phase
    return pipeline.make_dataset(
        files,
        phase.seq_length,
        phase.max_predictions,
        batch_size,
        names=names,
        input_context=context,
        shuffle=shuffle,
        seed=seed + plan.index,
        **kwargs,
    )


def worker_dataset(
    plan, files, names, worker_batch, pipelines, worker, workers, replicas, **kwargs
):
    """This worker's part (`worker_batch` sequences) of every global batch:
    the concatenation of the slices of its `pipelines / workers` pipelines.
    `kwargs` go to `dataset` (seed, shuffle, remasker, skip_batches)."""
    mine = pipelines // workers
    slices = [
        dataset(
            plan,
            files,
            names,
            worker_batch // mine,
            tf.distribute.InputContext(pipelines, worker * mine + i, replicas),
            **kwargs,
        )
        for i in range(mine)
    ]
    if mine == 1:
        return slices[0]
    return tf.data.Dataset.zip(tuple(slices)).map(
        lambda *parts: {key: tf.concat([p[key] for p in parts], 0) for key in parts[0]}
    )


def prediction_batches(files, parse, global_batch, part=0, parts=1):
    """Every record of `files` in file order, in global batches of
    `global_batch` (the last one padded with rows of index -1, which the
    caller drops), each cut into `parts` equal slices: slice `part` of each
    (a worker's or an input pipeline's share). Records hold an `index`."""
    dataset = tf.data.TFRecordDataset(files).batch(global_batch).map(parse)
    dataset = dataset.map(lambda batch: _padded(batch, global_batch))
    if parts == 1:
        return dataset
    return dataset.map(lambda batch: {n: tf.split(t, parts)[part] for n, t in batch.items()})


def _padded(batch, size):
    """A final, smaller batch padded to `size` rows (index -1: dropped)."""
    missing = size - tf.shape(batch["index"])[0]

    def pad(name, t):
        padding = [[0, missing]] + [[0, 0]] * (len(t.shape) - 1)
        t = tf.pad(t, padding, constant_values=-1 if name == "index" else 0)
        return tf.ensure_shape(t, [size, *t.shape[1:]])

    return {name: pad(name, t) for name, t in batch.items()}


def in_index_order(batches):
    """{name: array} of every real row of `batches` (dicts of host arrays
    with an `index`), padding dropped, ordered by index."""
    joined = {n: np.concatenate([b[n] for b in batches]) for n in batches[0]}
    keep = joined["index"] >= 0
    order = np.argsort(joined["index"][keep], kind="stable")
    return {n: v[keep][order] for n, v in joined.items()}
