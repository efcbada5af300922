"""The fine-tuned SQuAD span model as a folder people load and ask
questions of, answering as the run's predictions.json does.

The folder is a keras-hub BERT preset (config.json, model.weights.h5 and
the tokenizer, as `formats.export.export_encoder` writes them: keras-hub's
`BertBackbone.from_preset` and `BertTokenizer.from_preset` read it) plus
the span head and the settings that decide an answer:

    span_head.weights.h5   the head's kernel [hidden, 2] and bias [2]
    answering.json         task "squad", the windows (max_seq_length,
                           doc_stride, max_query_length), the decoding
                           (n_best_size, max_answer_length) and the version
                           with its null_score_threshold

An answer is made by the run's own code: `squad.features` cuts the
windows, the span model scores them, `spans.decode` picks the span over
all windows of a question (and for a v2.0 model answers "" where the
no-answer score wins), so the folder answers the run's dev set exactly as
the run's predictions.json. Each answer's `score` is the logit sum
(start_logit + end_logit) of its n-best entry: the best span's, or the
no-answer's ([CLS] start + end, the smallest over the windows) where the
answer is ""; -inf where no window holds a valid span (a v1.1 model
answers "" then). Logit sums, not the n-best's probabilities: a
probability is relative to the other entries of the list and says nothing
when compared across questions.
"""

import dataclasses
import json
import math
import os

import numpy as np

from trainers.bert.errors import ConfigError, DataError, read_json
from trainers.bert.finetune import spans, squad
from trainers.bert.finetune.export import folders
from trainers.bert.formats import export, preset

SETTINGS_FILE = "answering.json"
HEAD_FILE = "span_head.weights.h5"
TASK = "squad"
FORMAT = 1
BACKBONE, HEAD = "bert_backbone", "span_head"  # the layers of `heads.Span`'s model
BATCH = 32  # windows per forward pass


@dataclasses.dataclass(frozen=True)
class Settings:
    """What decides an answer besides the weights (`FineTuning`'s names)."""

    max_seq_length: int
    doc_stride: int
    max_query_length: int
    n_best_size: int = 20
    max_answer_length: int = 30
    is_v2: bool = False
    null_score_threshold: float = 0.0

    @classmethod
    def of(cls, fine_tuning, is_v2):
        """A run's settings (a `FineTuning`); `is_v2`: its dev file's version."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "is_v2"]
        return cls(is_v2=bool(is_v2), **{n: getattr(fine_tuning, n) for n in names})

    def as_json(self):
        values = dataclasses.asdict(self)
        values["version"] = "v2.0" if values.pop("is_v2") else "v1.1"
        return {"task": TASK, "format": FORMAT, **values, "head": HEAD_FILE}


@dataclasses.dataclass(frozen=True)
class Folder:
    """A checked answering folder: its encoder preset and settings."""

    path: str
    encoder: preset.Encoder
    settings: Settings

    @property
    def head(self):
        return os.path.join(self.path, HEAD_FILE)


def write(path, model, tokenizer, settings):
    """The fine-tuned span model (`heads.Span`'s, with the layers
    "bert_backbone" and "span_head") as an answering folder at `path`
    (local, or an object store's gs://); returns `path`.

    `tokenizer`: the run's `formats.tokenizer.Tokenizer`; `settings`: a
    `Settings` (`Settings.of(fine_tuning, is_v2)`) or a dict of its fields.
    The folder is made beside `path` and moved there whole: a write cut
    short leaves no folder that looks finished."""
    if not isinstance(settings, Settings):
        settings = Settings(**settings)
    backbone, head = model.get_layer(BACKBONE), model.get_layer(HEAD)

    def make(folder):
        export.write_preset(folder, backbone, tokenizer.vocab_file, tokenizer.lowercase)
        _write_head(os.path.join(folder, HEAD_FILE), head)
        with open(os.path.join(folder, SETTINGS_FILE), "w", encoding="utf-8") as f:
            json.dump(settings.as_json(), f, indent=1)

    return folders.write_whole(path, make)


def _write_head(path, head):
    import h5py

    kernel, bias = (np.asarray(w, dtype=np.float32) for w in head.get_weights())
    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", data=kernel)
        f.create_dataset("bias", data=bias)


def read_head(path):
    """(kernel [hidden, 2], bias [2]) of a span_head.weights.h5."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f["kernel"], np.float32), np.asarray(f["bias"], np.float32)
    except (OSError, KeyError) as error:
        raise DataError(
            f"answering folder: {path} is not a span head's weights ({error})"
        ) from None


def read(path):
    """The answering folder at `path`, checked before any model is built:
    errors name the folder and what is missing or of another kind (an
    encoder alone, a classifier's export, a pretraining run)."""
    where = f"answering folder {path}"
    if not os.path.isdir(path):
        raise ConfigError(f"{where}: no such folder")
    settings_file = os.path.join(path, SETTINGS_FILE)
    if not os.path.exists(settings_file):
        raise ConfigError(
            f"{where}: {_what_it_is(path)}, not a SQuAD span model (no {SETTINGS_FILE})"
        )
    values = read_json(settings_file, "answering folder", ConfigError)
    task = values.get("task") if isinstance(values, dict) else None
    if task != TASK:
        raise ConfigError(
            f"{where}: {SETTINGS_FILE} is of the task {task!r}, not a SQuAD span model ({TASK!r})"
        )
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "is_v2"]
    missing = [n for n in (*names, "version") if n not in values]
    if missing:
        raise ConfigError(f"{where}: {SETTINGS_FILE} lacks {missing}")
    if values["version"] not in ("v1.1", "v2.0"):
        raise ConfigError(f"{where}: version {values['version']!r} is not 'v1.1' or 'v2.0'")
    settings = Settings(is_v2=values["version"] == "v2.0", **{n: values[n] for n in names})
    if not os.path.exists(os.path.join(path, HEAD_FILE)):
        raise ConfigError(f"{where}: no {HEAD_FILE} (the span head's weights)")
    encoder = preset.read(path)
    if settings.max_seq_length > encoder.config.max_sequence_length:
        raise ConfigError(
            f"{where}: max_seq_length={settings.max_seq_length} exceeds the encoder's "
            f"max_sequence_length={encoder.config.max_sequence_length}"
        )
    kernel, bias = read_head(os.path.join(path, HEAD_FILE))
    if kernel.shape != (encoder.config.hidden_dim, 2) or bias.shape != (2,):
        raise DataError(
            f"{where}: {HEAD_FILE} holds a kernel {kernel.shape} and bias {bias.shape}, not "
            f"({encoder.config.hidden_dim}, 2) and (2,)"
        )
    return Folder(path, encoder, settings)


def _what_it_is(path):
    """What a folder without answering.json holds, for the error."""
    task_file = os.path.join(path, "task.json")
    if os.path.exists(task_file):
        try:
            with open(task_file, encoding="utf-8") as f:
                name = json.load(f).get("class_name", "a task")
        except (OSError, ValueError, AttributeError):
            name = "a task"
        return f"a keras-hub task preset ({name}: a classifier's export?)"
    if os.path.exists(os.path.join(path, preset.CONFIG)):
        return "a keras-hub encoder preset without a span head"
    if os.path.exists(os.path.join(path, "run.json")):
        return "a training run's folder (answering.write makes its answering folder)"
    return "holds no model"


class Answerer:
    """A loaded answering folder: `answer(questions, contexts)`."""

    def __init__(self, folder):
        from trainers.bert.finetune import heads

        self.folder, self.settings = folder, folder.settings
        self.tokenizer = folder.encoder.tokenizer
        self.model = heads.Span(weights=folder.encoder.weights).build(folder.encoder.config)
        self.model.get_layer(HEAD).set_weights(list(read_head(folder.head)))

    def answer(self, questions, contexts):
        """-> [{"answer": text, "score": logit sum}] for each (question,
        context) pair, as the run decides (see the module docstring)."""
        questions, contexts = list(questions), list(contexts)
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        examples = [
            squad.Example(str(i), q, c, ()) for i, (q, c) in enumerate(zip(questions, contexts))
        ]
        predictions, _, n_best = self.predict(examples)
        result = []
        for example in examples:
            text = predictions[example.qid]
            entry = next((e for e in n_best[example.qid] if e["text"] == text), None)
            score = entry["start_logit"] + entry["end_logit"] if entry else -math.inf
            result.append({"answer": text, "score": score})
        return result

    def predict(self, examples):
        """`spans.decode`'s (predictions, null_odds, n_best) of
        `squad.Example`s, as the run writes them."""
        s = self.settings
        features = squad.features(
            examples, self.tokenizer, s.max_seq_length, s.doc_stride, s.max_query_length
        )
        starts, ends = self.logits(features)
        return spans.decode(
            examples,
            features,
            starts,
            ends,
            n_best_size=s.n_best_size,
            max_answer_length=s.max_answer_length,
            is_v2=s.is_v2,
            null_score_threshold=s.null_score_threshold,
        )

    def logits(self, features):
        """(start, end) logits [features, max_seq_length] of the windows,
        zero-padded as the run's records."""
        length = self.settings.max_seq_length
        starts, ends = [], []
        for first in range(0, len(features), BATCH):
            batch = features[first : first + BATCH]
            inputs = {
                name: np.zeros((len(batch), length), np.int32)
                for name in ("token_ids", "segment_ids", "padding_mask")
            }
            for row, feature in enumerate(batch):
                n = len(feature.token_ids)
                inputs["token_ids"][row, :n] = feature.token_ids
                inputs["segment_ids"][row, :n] = feature.segment_ids
                inputs["padding_mask"][row, :n] = 1
            outputs = self.model(inputs, training=False)
            starts.append(np.asarray(outputs["start_logits"], np.float32))
            ends.append(np.asarray(outputs["end_logits"], np.float32))
        if not starts:
            return np.zeros((0, length), np.float32), np.zeros((0, length), np.float32)
        return np.concatenate(starts), np.concatenate(ends)


def load(path):
    """The answering folder at `path`, ready to answer (`Answerer`)."""
    return Answerer(read(path))
