"""The GLUE tasks from the standard GLUE folder layout (`train.tsv`,
`dev.tsv`, `test.tsv` in one folder per task, as GLUE's download script
writes them), their metrics, and predictions in the submission format.
`test.tsv` is optional: without it dev is scored and no test predictions are
written (`files` says so in a note).

Columns are found by the header's names (CoLA's training and dev files have
no header: by position, as GLUE ships them). TSV is read without quoting, as
GLUE's files are written. A row with missing columns or a label outside the
task's label set stops with the file, the line and the value; another
task's folder (by GLUE's name for it) or the folder of all tasks is refused.
"""

import csv
import dataclasses
import os

import numpy as np

from trainers.bert.errors import ConfigError, DataError
from trainers.bert.finetune import metrics
from trainers.bert.run import run_dir


@dataclasses.dataclass(frozen=True)
class Task:
    name: str  # the --task value
    folder: str  # GLUE's folder and submission name
    texts: tuple  # header names of the one or two text columns
    label: str  # header name of the label column
    labels: tuple | None  # the label set; None: regression (STS-B)
    metrics: tuple  # names in METRICS; the first is the task's score
    dev: tuple = ("dev.tsv",)
    test: tuple = ("test.tsv",)
    submission: tuple = ()  # one file per test file; default: folder.tsv
    positional: dict | None = None  # columns of files without a header

    @property
    def is_regression(self):
        return self.labels is None

    def submission_files(self):
        return self.submission or (f"{self.folder}.tsv",)

    def submission_file(self, test):
        """The submission file of the test file `test` ("test_matched.tsv"
        or its name without ".tsv")."""
        names = [t[:-4] for t in self.test]
        return self.submission_files()[names.index(test.removesuffix(".tsv"))]


BINARY = ("0", "1")
ENTAILMENT = ("entailment", "not_entailment")
TASKS = {
    t.name: t
    for t in (
        Task("cola", "CoLA", ("sentence",), "label", BINARY, ("mcc", "accuracy"),
             positional={"sentence": 3, "label": 1}),
        Task("sst2", "SST-2", ("sentence",), "label", BINARY, ("accuracy",)),
        Task("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", BINARY, ("f1", "accuracy")),
        Task("stsb", "STS-B", ("sentence1", "sentence2"), "score", None, ("pearson", "spearman")),
        Task("qqp", "QQP", ("question1", "question2"), "is_duplicate", BINARY,
             ("accuracy", "f1")),
        Task("mnli", "MNLI", ("sentence1", "sentence2"), "gold_label",
             ("contradiction", "entailment", "neutral"), ("accuracy",),
             dev=("dev_matched.tsv", "dev_mismatched.tsv"),
             test=("test_matched.tsv", "test_mismatched.tsv"),
             submission=("MNLI-m.tsv", "MNLI-mm.tsv")),
        Task("qnli", "QNLI", ("question", "sentence"), "label", ENTAILMENT, ("accuracy",)),
        Task("rte", "RTE", ("sentence1", "sentence2"), "label", ENTAILMENT, ("accuracy",)),
        Task("wnli", "WNLI", ("sentence1", "sentence2"), "label", BINARY, ("accuracy",)),
    )
}  # fmt: skip

METRICS = {
    "accuracy": metrics.accuracy,
    "f1": metrics.f1,
    "mcc": metrics.matthews_corrcoef,
    "pearson": metrics.pearson,
    "spearman": metrics.spearman,
}


def task(name):
    if name not in TASKS:
        raise ConfigError(f"--task={name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


@dataclasses.dataclass(frozen=True)
class Example:
    guid: str  # the test file's index, else file:line
    texts: tuple  # one or two texts
    label: object = None  # the label's index, a float (regression), None (test)


def files(task, data_dir):
    """The task's files in its GLUE folder, read: ([(path, train examples),
    (path, name, examples, labelled) for each dev file and each test file
    there], notes). Training and dev files are needed; a test file is not:
    without it dev is still scored and no test predictions are written,
    which a note (one line) says."""
    if not os.path.isdir(data_dir):
        raise ConfigError(
            f"finetune.data_dir {data_dir}: no such folder (give the task's GLUE folder, "
            f"e.g. glue_data/{task.folder}, holding {_layout(task)})"
        )
    _check_folder(task, data_dir)
    train = os.path.join(data_dir, "train.tsv")
    found = [(train, read(task, train))]
    for name in task.dev:
        path = os.path.join(data_dir, name)
        found.append((path, name[:-4], read(task, path), True))
    absent = []
    for name in task.test:
        path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            absent.append(name)
            continue
        found.append((path, name[:-4], read(task, path, labelled=False), False))
    notes = []
    if absent:
        skipped = [task.submission_file(name) for name in absent]
        scored = " and ".join(task.dev)
        notes.append(
            f"{data_dir} has no {' or '.join(absent)}: {scored} "
            f"{'is' if len(task.dev) == 1 else 'are'} scored, no test predictions "
            f"({', '.join(skipped)}) are written"
        )
    return found, notes


def _check_folder(task, data_dir):
    """`data_dir` is not another task's GLUE folder (by GLUE's name for it:
    CoLA's reader would take SST-2's files, which have the same columns and
    labels, without a word), nor the folder above the tasks'."""
    named = _plain(os.path.basename(os.path.normpath(data_dir)))
    for other in TASKS.values():
        if other is not task and named in (_plain(other.folder), other.name):
            raise ConfigError(
                f"finetune.data_dir {data_dir} is GLUE's {other.folder} folder, read by "
                f"finetune.task={other.name!r}; finetune.task={task.name!r} reads {task.folder}"
            )
    inside = [t.folder for t in TASKS.values() if os.path.isdir(os.path.join(data_dir, t.folder))]
    if inside and not os.path.exists(os.path.join(data_dir, "train.tsv")):
        raise ConfigError(
            f"finetune.data_dir {data_dir} holds GLUE's task folders ({', '.join(inside)}): "
            f"give the task's own, {os.path.join(data_dir, task.folder)}"
        )


def _plain(name):
    return name.lower().replace("-", "").replace("_", "")


def _layout(task):
    needed = ", ".join(("train.tsv", *task.dev))
    return f"{needed} and, for test predictions, {', '.join(task.test)}"


def read(task, path, labelled=True):
    """The examples of one TSV file of `task`; `labelled=False` for test
    files (no label column; the guid is the row's index for submission)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file (GLUE's {task.folder} folder holds {_layout(task)})")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))
    if not rows:
        raise DataError(f"{path}: empty")
    wanted = task.texts + ((task.label,) if labelled else ())
    header = rows[0]
    if all(name in header for name in wanted):
        columns = {name: header.index(name) for name in wanted}
        start = 1
    elif task.positional and all(name in task.positional for name in wanted):
        columns = {name: task.positional[name] for name in wanted}
        start = 0
    else:
        raise DataError(f"{path}:1: the header lacks the columns {wanted} of {task.folder}")
    index_column = next((header.index(n) for n in ("index", "id") if n in header), None)
    if not labelled and index_column is None:
        raise DataError(f"{path}:1: no 'index' or 'id' column to number the predictions")
    width = max(columns.values()) + 1
    examples = []
    for line, row in enumerate(rows[start:], start + 1):
        if not row:
            continue  # a blank line
        if len(row) < width:
            raise DataError(
                f"{path}:{line}: {len(row)} column(s), {task.folder} needs at least {width} "
                f"(for {', '.join(wanted)})"
            )
        label = _label(task, row[columns[task.label]], path, line) if labelled else None
        guid = row[index_column] if not labelled else f"{os.path.basename(path)}:{line}"
        examples.append(Example(guid, tuple(row[columns[n]] for n in task.texts), label))
    if not examples:
        raise DataError(f"{path}: holds no examples")
    return examples


def _label(task, value, path, line):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise DataError(f"{path}:{line}: score {value!r} is not a number") from None
    if value not in task.labels:
        raise DataError(
            f"{path}:{line}: label {value!r} is not one of {task.folder}'s labels {task.labels}"
        )
    return task.labels.index(value)


def score(task, labels, outputs):
    """{metric: value} of model `outputs` (logits, or scores for
    regression) against `labels`."""
    predictions = predict(task, outputs)
    return {name: METRICS[name](labels, predictions) for name in task.metrics}


def predict(task, outputs):
    outputs = np.asarray(outputs)
    return outputs.reshape(-1) if task.is_regression else np.argmax(outputs, -1)


def write_submission(task, path, examples, outputs):
    """`index<TAB>prediction` lines (labels as GLUE names them) for the test
    examples, written atomically."""
    lines = ["index\tprediction"]
    for example, prediction in zip(examples, predict(task, outputs)):
        value = f"{prediction:.3f}" if task.is_regression else task.labels[prediction]
        lines.append(f"{example.guid}\t{value}")
    return run_dir.write_atomically(path, "\n".join(lines) + "\n")
