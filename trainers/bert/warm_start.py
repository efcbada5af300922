"""Warm start: a new run's weights from an existing BERT, for continued
(domain-adaptive) pretraining.

`train.init_checkpoint` is either
- a keras-hub BERT preset folder (`config.json`, `model.weights.h5`, its
  tokenizer's vocabulary): the encoder; the pretraining heads start at random;
- a google-research/bert checkpoint (`.../bert_model.ckpt`, or its folder,
  with `bert_config.json` and `vocab.txt` beside it): the encoder, the
  masked-LM head (transform dense, LayerNorm, output bias) and the
  next-sentence head where the checkpoint has them.

It applies only to a run without a checkpoint of its own: a restart
resumes. Everything is checked against the run before any step: the
model's shape, the vocabulary (the same tokens as the data's), its casing
(against the data's `do_lower_case`), each variable's shape.
"""

import dataclasses
import os

import numpy as np

from trainers.bert import google_checkpoint, preset
from trainers.bert import model as model_lib
from trainers.bert.data.vocab import cased_tokens
from trainers.bert.errors import ConfigError

SHAPE_FIELDS = (
    "num_layers",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "vocabulary_size",
    "max_sequence_length",
    "num_segments",
)


@dataclasses.dataclass(frozen=True)
class WarmStart:
    source: str  # what was read, for the log
    values: dict  # our variable path -> array, in our layout


def read(init_checkpoint, config, vocab_file, do_lower_case, model):
    """The weights of `init_checkpoint` for `model` (the run's pretraining
    model, whose variables name the paths and shapes), checked."""
    where = f"train.init_checkpoint {init_checkpoint}"
    if os.path.isfile(os.path.join(init_checkpoint, "config.json")):
        source, source_config, tokens, weights = _preset(init_checkpoint, where)
    else:
        source, source_config, tokens, weights = _google(init_checkpoint, where)
    differing = [
        f"{name} {getattr(source_config, name)} there, {getattr(config, name)} in train.model"
        for name in SHAPE_FIELDS
        if getattr(source_config, name) != getattr(config, name)
    ]
    if differing:
        raise ConfigError(f"{where} has another shape: {'; '.join(differing)}")
    _check_vocabulary(tokens, vocab_file, do_lower_case, where)
    values = weights()
    shapes = {v.path: tuple(v.shape) for v in model.weights}
    for path, value in values.items():
        if path in shapes and tuple(value.shape) != shapes[path]:
            raise ConfigError(
                f"{where}: {path} has shape {tuple(value.shape)} there, {shapes[path]} here"
            )
    return WarmStart(source, {p: v for p, v in values.items() if p in shapes})


def _preset(path, where):
    try:
        encoder = preset.read(path)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None

    def weights():
        backbone = model_lib.build_backbone(encoder.config)
        backbone.load_weights(encoder.weights)
        return {v.path: np.asarray(v.numpy()) for v in backbone.weights}

    return f"keras-hub preset {path}", encoder.config, encoder.tokenizer.tokens, weights


def _google(path, where):
    prefix = path
    if os.path.isdir(path):
        prefix = os.path.join(path, google_checkpoint.CHECKPOINT)
    if not google_checkpoint.is_checkpoint(prefix):
        raise ConfigError(
            f"{where}: neither a keras-hub preset folder (config.json) nor a google-research "
            f"checkpoint ({prefix}.index not found)"
        )
    folder = os.path.dirname(prefix)
    config_file = os.path.join(folder, google_checkpoint.CONFIG)
    if not os.path.exists(config_file):
        raise ConfigError(f"{where}: no {google_checkpoint.CONFIG} beside the checkpoint")
    config = google_checkpoint.read_config(config_file)
    vocab = os.path.join(folder, google_checkpoint.VOCAB)
    tokens = _tokens(vocab) if os.path.exists(vocab) else None
    if tokens is not None and len(tokens) != config.vocabulary_size:
        raise ConfigError(
            f"{where}: {vocab} holds {len(tokens)} tokens, {config_file} says vocab_size "
            f"{config.vocabulary_size}: not the checkpoint's vocabulary"
        )
    raw = google_checkpoint.read(prefix)

    def weights():  # in our layout, once the shapes are known to agree
        encoder = google_checkpoint.encoder_names(config.num_layers)
        missing = [theirs for _, theirs, _ in encoder if theirs not in raw]
        if missing:
            raise ConfigError(
                f"{where}: the checkpoint lacks {missing[0]} ({len(missing)} encoder "
                "variable(s) missing)"
            )
        return {
            ours: google_checkpoint.from_google(raw[theirs], kind, _our_shape(config, ours))
            for ours, theirs, kind in google_checkpoint.names(config.num_layers)
            if theirs in raw
        }

    return f"google-research checkpoint {prefix}", config, tokens, weights


def _our_shape(config, path):
    """The shape of our variable `path` in a model of `config`, for the
    reshapes (attention kernels and biases)."""
    h, n = config.hidden_dim, config.num_heads
    if path.endswith(("query/kernel", "key/kernel", "value/kernel")):
        return (h, n, h // n)
    if path.endswith(("query/bias", "key/bias", "value/bias")):
        return (n, h // n)
    if path.endswith("attention_output/kernel"):
        return (n, h // n, h)
    return None  # as stored


def _tokens(vocab_file):
    with open(vocab_file, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _check_vocabulary(tokens, vocab_file, do_lower_case, where):
    if tokens is None or vocab_file is None:
        return
    ours = _tokens(vocab_file)
    if ours != tokens:
        first = next(
            (i for i, (a, b) in enumerate(zip(tokens, ours)) if a != b), min(len(tokens), len(ours))
        )
        raise ConfigError(
            f"{where}: its vocabulary ({len(tokens)} tokens) is not the data's {vocab_file} "
            f"({len(ours)} tokens; first difference at line {first + 1}): the embedding rows "
            "would mean other tokens"
        )
    cased = cased_tokens(tokens)
    if do_lower_case is not None and bool(cased) == bool(do_lower_case):
        kind = f"cased (e.g. {cased[0]!r})" if cased else "uncased"
        raise ConfigError(
            f"{where}: its vocabulary is {kind} but the data was made with "
            f"do_lower_case={do_lower_case}: make the data again with "
            f"--do_lower_case={not do_lower_case}"
        )
