"""A fine-tuned classifier (GLUE, STS-B's regression, the built-in
`pydoc_topics`) as a keras-hub task preset, so anyone with keras-hub
classifies raw text with it, on any Keras backend:

    classifier = keras_hub.models.TextClassifier.from_preset(path)
    classifier.predict(["a sentence", ...])            # one text per example
    classifier.predict((["first", ...], ["second", ...]))  # pair tasks

The folder is what keras-hub writes for a `BertTextClassifier` (config.json
and model.weights.h5 for the encoder, task.json and task.weights.h5 for the
head, preprocessor.json and the tokenizer) plus LABELS_FILE, which keras-hub
ignores: the task, its label names (null for a regression) and the inputs
of the task (one text or a pair), which `predict` and `serving` read.

keras-hub's preprocessor computes the run's features. Its tokenizer is made
as `formats.export` makes the encoder's (lower-casing also strips accents);
where keras-hub's normalisation cannot follow google-research/bert's
("ß", ligatures, control and format characters, Unicode spaces: pinned in
tests/trainers/bert/formats/test_tokenization_oracle.py) the ids differ as
they do for the encoder. Its "round_robin" truncation of a pair equals
google-research/bert's `_truncate_seq_pair`, which `datasets.pair_features`
follows ("waterfall" cuts the second text first, to nothing if need be).
"""

import dataclasses
import json
import os

import numpy as np

from trainers.bert.errors import ConfigError, read_json
from trainers.bert.finetune import glue, topics
from trainers.bert.finetune.export import answering, folders
from trainers.bert.formats import export

LABELS_FILE = "labels.json"
FORMAT = 1
TRUNCATE = "round_robin"  # google-research/bert's longest-first on pairs (module docstring)
BACKBONE, CLASSIFIER = "bert_backbone", "classifier"  # the layers of `heads.Classification`'s
CLASS_NAME = "BertTextClassifier"
# What keras-hub's `from_preset` reads; a folder without one is incomplete.
FILES = (
    "config.json",
    "model.weights.h5",
    "task.json",
    "task.weights.h5",
    "preprocessor.json",
    "tokenizer.json",
    os.path.join("assets", "tokenizer", "vocabulary.txt"),
)
SINGLE, PAIR = ("text",), ("text", "text_pair")  # the inputs of a task, by name


@dataclasses.dataclass(frozen=True)
class Folder:
    """A checked classifier folder."""

    path: str
    task: str | None
    labels: tuple | None  # None: a regression (one score)
    inputs: tuple  # SINGLE or PAIR
    max_seq_length: int

    @property
    def regression(self):
        return self.labels is None

    @property
    def pair(self):
        return self.inputs == PAIR


def inputs_of(task):
    """SINGLE or PAIR: the texts an example of `task` (a GLUE task's name or
    "pydoc_topics") has."""
    if task in glue.TASKS:
        return PAIR if len(glue.TASKS[task].texts) == 2 else SINGLE
    if task == topics.NAME:
        return SINGLE
    raise ConfigError(f"task {task!r}: not a classification task ({', '.join(_tasks())})")


def labels_of(task):
    """The label names of `task` in its head's order (a list); None for a
    regression (STS-B)."""
    inputs_of(task)  # a classification task's name
    definition = glue.TASKS[task] if task in glue.TASKS else topics.task()
    return None if definition.labels is None else list(definition.labels)


def _tasks():
    return (*glue.TASKS, topics.NAME)


def write(path, model, head, tokenizer, max_seq_length, label_names, task):
    """The fine-tuned classifier as a keras-hub `BertTextClassifier` preset
    at `path` (local, or an object store's gs://); returns `path`.

    Args:
        model: the fine-tuned Keras model `heads.Classification.build` made
            (layers "bert_backbone" and "classifier"), on either backend.
        head: its `heads.Classification`.
        tokenizer: the run's `formats.tokenizer.Tokenizer`.
        max_seq_length: the run's; the preprocessor's sequence length.
        label_names: the label names in the head's order; None for a
            regression (STS-B).
        task: the task's name (a GLUE task or "pydoc_topics"): pair or not.

    The encoder is rebuilt in float32 whatever the run's precision (its
    variables are float32 in any case). The folder is made beside `path`
    and moved there whole: a write cut short leaves no folder that looks
    finished."""
    inputs = inputs_of(task)
    _check_labels(head, label_names)
    classifier = _classifier(model, head, tokenizer, max_seq_length)
    labels = None if label_names is None else [str(name) for name in label_names]
    text = {"task": task, "format": FORMAT, "labels": labels, "inputs": list(inputs)}

    def make(folder):
        classifier.save_to_preset(folder)
        with open(os.path.join(folder, LABELS_FILE), "w", encoding="utf-8") as f:
            json.dump(text, f, indent=1)

    return folders.write_whole(path, make)


def _check_labels(head, label_names):
    if head.regression:
        if label_names is not None:
            raise ConfigError(f"a regression head has no label names; {label_names!r} given")
    elif label_names is None or len(label_names) != head.num_labels:
        raise ConfigError(f"the head has {head.num_labels} labels; label names {label_names!r}")


def _classifier(model, head, tokenizer, max_seq_length):
    """keras-hub's `BertTextClassifier` computing `model`'s logits from
    raw text: the run's encoder weights, the classifier's kernel and bias
    in keras-hub's "logits" layer."""
    import keras_hub

    trained = model.get_layer(BACKBONE)
    backbone = keras_hub.models.BertBackbone.from_config(
        {**trained.get_config(), "dtype": "float32"}
    )
    backbone.set_weights([np.asarray(w, np.float32) for w in trained.get_weights()])
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer=export.keras_hub_tokenizer(tokenizer.tokens, tokenizer.lowercase),
        sequence_length=max_seq_length,
        truncate=TRUNCATE,
    )
    classifier = keras_hub.models.BertTextClassifier(
        backbone=backbone,
        num_classes=1 if head.regression else head.num_labels,
        preprocessor=preprocessor,
    )
    dense = model.get_layer(CLASSIFIER)
    classifier.get_layer("logits").set_weights(
        [np.asarray(w, np.float32) for w in dense.get_weights()]
    )
    return classifier


def read(path):
    """The classifier folder at `path`, checked before any model is built:
    errors (ConfigError) name the folder and what is missing or of another
    kind (a SQuAD span model, an encoder alone, a training run)."""
    where = f"classifier folder {path}"
    if not os.path.isdir(path):
        raise ConfigError(f"{where}: no such folder")
    if os.path.exists(os.path.join(path, answering.SETTINGS_FILE)):
        raise ConfigError(
            f"{where}: a SQuAD span model ({answering.SETTINGS_FILE}), not a classifier: it "
            "answers questions (trainers.bert.finetune.export.answering)"
        )
    if not os.path.exists(os.path.join(path, "config.json")):
        if os.path.exists(os.path.join(path, "encoder", "config.json")):
            raise ConfigError(f"{where}: a training run's folder, not a classifier's export")
        raise ConfigError(f"{where}: no config.json (not a keras-hub preset)")
    if not os.path.exists(os.path.join(path, "task.json")):
        raise ConfigError(f"{where}: an encoder without a classifier head (no task.json)")
    task_config = read_json(os.path.join(path, "task.json"), where, ConfigError)
    class_name = task_config.get("class_name") if isinstance(task_config, dict) else None
    if class_name != CLASS_NAME:
        raise ConfigError(f"{where}: task.json describes a {class_name!r}, not a {CLASS_NAME}")
    missing = [name for name in FILES if not os.path.exists(os.path.join(path, name))]
    if missing:
        raise ConfigError(f"{where}: incomplete, no {', '.join(missing)}; export it again")
    if not os.path.exists(os.path.join(path, LABELS_FILE)):
        raise ConfigError(
            f"{where}: no {LABELS_FILE} (the task and its label names): not written by this "
            "trainer's export, or cut short"
        )
    values = read_json(os.path.join(path, LABELS_FILE), where, ConfigError)
    if not isinstance(values, dict) or not {"task", "labels", "inputs"} <= set(values):
        raise ConfigError(f"{where}: {LABELS_FILE} lacks the task, labels or inputs")
    labels, inputs = values["labels"], tuple(values["inputs"])
    if inputs not in (SINGLE, PAIR):
        raise ConfigError(
            f"{where}: {LABELS_FILE} inputs {list(inputs)} are not {SINGLE} or {PAIR}"
        )
    classes = task_config.get("config", {}).get("num_classes")
    if classes != (1 if labels is None else len(labels)):
        raise ConfigError(
            f"{where}: task.json has {classes} classes, {LABELS_FILE} the labels {labels}"
        )
    preprocessor = read_json(os.path.join(path, "preprocessor.json"), where, ConfigError)
    length = preprocessor.get("config", {}).get("sequence_length")
    return Folder(
        path, values["task"], None if labels is None else tuple(labels), inputs, int(length)
    )
