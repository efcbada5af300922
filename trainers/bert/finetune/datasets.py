"""A fine-tuning task's data, made model-ready: the training features, and
the sets to evaluate or predict (each scoring the model's outputs and
writing its prediction files).

    squad          SQuAD v1.1 or v2.0 (by the file): `train_file`, `predict_file`
    cola ... wnli  GLUE, from the task's folder (`data_dir`)
    pydoc_topics   the built-in task: which of CPython's help topics a passage
                   of two sentences comes from (`topics`)

A feature is (token ids, segment ids, labels); `records` writes them.
"""

import dataclasses
import os

from trainers.bert.data.shards import corpus
from trainers.bert.errors import ConfigError
from trainers.bert.finetune import glue, heads, spans, squad, squad_eval, topics


@dataclasses.dataclass
class Split:
    """A set the fine-tuned model predicts: `score(outputs)` -> figures
    (None for unlabelled test sets); `write(outputs, folder)` -> paths."""

    name: str
    source: str  # the file it is made from
    features: list
    score: object
    write: object


@dataclasses.dataclass
class TaskData:
    head: object  # a `heads` task, before the encoder's weights are known
    train: list  # features
    splits: list  # of `Split`
    source: str  # the file the training features are made from
    notes: list  # what a user should know about the data (counted problems)
    is_v2: bool = False  # SQuAD: the dev file's version decides unanswerable questions


TASKS = ("squad", "pydoc_topics", *glue.TASKS)


def load(
    task,
    tokenizer,
    max_seq_length,
    data_dir=None,
    train_file=None,
    predict_file=None,
    doc_stride=128,
    max_query_length=64,
    n_best_size=20,
    max_answer_length=30,
    null_score_threshold=0.0,
):
    """The data of `task` (see the module docstring), checked."""
    if task == "squad":
        if not train_file or not predict_file:
            raise ConfigError("finetune.task='squad' needs train_file and predict_file")
        options = dict(
            n_best_size=n_best_size,
            max_answer_length=max_answer_length,
            null_score_threshold=null_score_threshold,
        )
        windows = (max_seq_length, doc_stride, max_query_length)
        return _squad(tokenizer, train_file, predict_file, windows, options)
    if task == "pydoc_topics":
        train, sets = topics.examples()
        files = [(corpus.BUILTIN_TOPICS, train), *((corpus.BUILTIN_TOPICS, *s) for s in sets)]
        return _classification(topics.task(), files, tokenizer, max_seq_length)
    if task in glue.TASKS:
        if not data_dir:
            raise ConfigError(f"finetune.task={task!r} needs data_dir (its GLUE folder)")
        definition = glue.task(task)
        files, notes = glue.files(definition, data_dir)
        data = _classification(definition, files, tokenizer, max_seq_length)
        data.notes.extend(notes)
        return data
    raise ConfigError(f"finetune.task={task!r}: choose one of {', '.join(TASKS)}")


# ----------------------------------------------------------- classification


def _classification(task, files, tokenizer, max_seq_length):
    """`files`: the training (path, examples), then (path, name, examples,
    labelled) of each set to predict."""
    (train_path, train), *sets = files
    head = heads.Classification(None if task.is_regression else len(task.labels))
    splits = []
    for path, name, examples, labelled in sets:
        score = _scorer(task, [e.label for e in examples]) if labelled else None
        file = None if labelled else task.submission_file(name)
        write = _submission_writer(task, examples, file) if file else _no_files
        features = pair_features(examples, tokenizer, max_seq_length)
        splits.append(Split(name, path, features, score, write))
    train_features = pair_features(train, tokenizer, max_seq_length)
    return TaskData(head, train_features, splits, train_path, [])


def _scorer(task, labels):
    return lambda outputs: glue.score(task, labels, outputs["logits"])


def _submission_writer(task, examples, file):
    def write(outputs, folder):
        return [
            glue.write_submission(task, os.path.join(folder, file), examples, outputs["logits"])
        ]

    return write


def _no_files(outputs, folder):
    return []


def pair_features(examples, tokenizer, max_seq_length):
    """[CLS] a [SEP] (b [SEP]): the longer text loses its last token until
    the pair fits, the second on a tie (google-research/bert's
    `_truncate_seq_pair`; keras-hub's "round_robin" packer cuts the same)."""
    firsts = tokenizer.encode_batch(e.texts[0] for e in examples)
    seconds = tokenizer.encode_batch(e.texts[1] if len(e.texts) > 1 else "" for e in examples)
    features = []
    for example, a, b in zip(examples, firsts, seconds):
        room = max_seq_length - (3 if len(example.texts) > 1 else 2)
        a, b = list(a), list(b)
        while len(a) + len(b) > room:
            (a if len(a) > len(b) else b).pop()
        token_ids = [tokenizer.cls_id, *a, tokenizer.sep_id]
        segment_ids = [0] * len(token_ids)
        if len(example.texts) > 1:
            token_ids += [*b, tokenizer.sep_id]
            segment_ids += [1] * (len(b) + 1)
        labels = {} if example.label is None else {"label": example.label}
        features.append((token_ids, segment_ids, labels))
    return features


# -------------------------------------------------------------------- SQuAD


def _squad(tokenizer, train_file, predict_file, windows, options):
    train = squad.read(train_file)
    dev = squad.read(predict_file)
    notes = _squad_notes(train_file, train, predict_file, dev, options["null_score_threshold"])
    if train.misplaced:
        notes.append(
            f"{train_file}: {len(train.misplaced)} question(s) whose answer_start does not "
            f"point at the answer's text (left out of training), e.g. {train.misplaced[0]!r}"
        )
    train_features = squad.features(train.examples, tokenizer, *windows, training=True)
    dev_features = squad.features(dev.examples, tokenizer, *windows, training=False)

    def as_records(features):
        return [
            (
                f.token_ids,
                f.segment_ids,
                {"start_positions": f.start_position, "end_positions": f.end_position},
            )
            for f in features
        ]

    def decode(outputs):
        return spans.decode(
            dev.examples,
            dev_features,
            outputs["start_logits"],
            outputs["end_logits"],
            is_v2=dev.is_v2,
            **options,
        )

    def score(outputs):
        predictions, null_odds, _ = decode(outputs)
        figures, _ = squad_eval.evaluate(
            dev.raw, predictions, null_odds or None, options["null_score_threshold"]
        )
        return figures

    def write(outputs, folder):
        return list(spans.write(folder, *decode(outputs)).values())

    split = Split("dev", predict_file, as_records(dev_features), score, write)
    return TaskData(heads.Span(), as_records(train_features), [split], train_file, notes, dev.is_v2)


def _squad_notes(train_file, train, predict_file, dev, null_score_threshold):
    """What a user should know of the files given, each a note."""
    notes = []
    if os.path.realpath(train_file) == os.path.realpath(predict_file):
        notes.append(
            f"train_file and predict_file are the same file ({train_file}): the scores are of "
            "questions the model was trained on"
        )
    versions = ["v2.0" if data.is_v2 else "v1.1" for data in (train, dev)]
    if versions == ["v1.1", "v2.0"]:
        notes.append(
            "train_file is SQuAD v1.1 and predict_file v2.0: the model is trained on "
            "answerable questions only, and scored on v2.0's unanswerable ones too"
        )
    elif versions == ["v2.0", "v1.1"]:
        notes.append(
            "train_file is SQuAD v2.0 and predict_file v1.1: predictions are v1.1's (always "
            "an answer), scored by v1.1's rules"
        )
    if not dev.is_v2 and null_score_threshold:
        notes.append(
            f"finetune.null_score_threshold={null_score_threshold} is not used: {predict_file} "
            "is SQuAD v1.1, whose questions all have answers"
        )
    return notes
