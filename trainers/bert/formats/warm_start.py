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
resumes. Everything is checked against the run before anything is written
(run.json, built-in data): `bert_config.json`'s shape and the fields that
change the function (`model.FUNCTION_FIELDS`), the vocabulary (the same
tokens as the data's; a google-research checkpoint without its vocab.txt is
refused), its casing (against the data's `do_lower_case`), and every
tensor's shape in the file's own layout, before any reshape. What the
source lacks of the heads starts at random and is named tensor by tensor.
"""

import dataclasses
import os

import numpy as np

from trainers.bert.data.shards.vocab import cased_tokens, read_tokens
from trainers.bert.errors import ConfigError
from trainers.bert.formats import google_checkpoint, preset
from trainers.bert.model import bert as model_lib

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
    at_random: list  # what the source lacks: "ours (theirs)" names, for the log
    notes: list  # checks that could not be made, for the log


def read(init_checkpoint, config, vocab_file, do_lower_case):
    """The weights of `init_checkpoint` for a pretraining model of `config`,
    checked against the run (its shape, the data's vocabulary `vocab_file`
    and casing `do_lower_case`) before anything is written."""
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
    notes = _check_vocabulary(tokens, vocab_file, do_lower_case, where)
    values, at_random = weights()
    return WarmStart(source, values, at_random, notes)


def _preset(path, where):
    try:
        encoder = preset.read(path)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None

    def weights():
        backbone = model_lib.build_backbone(encoder.config)
        backbone.load_weights(encoder.weights)
        heads = google_checkpoint.MLM_HEAD + google_checkpoint.NSP_HEAD
        return {v.path: np.asarray(v.numpy()) for v in backbone.weights}, [
            row.ours for row in heads
        ]

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
    config = model_lib.read_bert_config(config_file)
    vocab = os.path.join(folder, google_checkpoint.VOCAB)
    if not os.path.exists(vocab):
        raise ConfigError(
            f"{where}: no {google_checkpoint.VOCAB} beside the checkpoint, so nothing says "
            "which token each embedding row stands for: put the checkpoint's vocab.txt there"
        )
    tokens = read_tokens(vocab)
    if len(tokens) != config.vocabulary_size:
        raise ConfigError(
            f"{where}: {vocab} holds {len(tokens)} tokens, {config_file} says vocab_size "
            f"{config.vocabulary_size}: not the checkpoint's vocabulary"
        )
    raw = google_checkpoint.read(prefix)

    def weights():  # checked in the file's own layout, then reshaped to ours
        rows = google_checkpoint.names(config.num_layers)
        expected = {row.theirs: google_checkpoint.google_shape(row, config) for row in rows}
        wrong = [
            f"{name} {raw[name].shape}, expected {shape}"
            for name, shape in expected.items()
            if name in raw and raw[name].shape != shape
        ]
        if wrong:
            raise ConfigError(
                f"{where}: {len(wrong)} tensor(s) of another shape than {config_file} "
                f"describes: {'; '.join(wrong[:3])}"
            )
        encoder = google_checkpoint.encoder_names(config.num_layers)
        missing = [row.theirs for row in encoder if row.theirs not in raw]
        if missing:
            raise ConfigError(
                f"{where}: the checkpoint lacks {missing[0]} ({len(missing)} encoder "
                "variable(s) missing)"
            )
        values = {
            row.ours: google_checkpoint.from_google(raw[row.theirs], row, config)
            for row in rows
            if row.theirs in raw
        }
        return values, [f"{row.ours} ({row.theirs})" for row in rows if row.theirs not in raw]

    return f"google-research checkpoint {prefix}", config, tokens, weights


def _check_vocabulary(tokens, vocab_file, do_lower_case, where):
    """The source's vocabulary against the data's; -> notes on the checks
    that could not be made."""
    if vocab_file is None:
        return [
            "vocabulary not checked: the data names no vocab.txt (train.vocab_file): the "
            "embedding rows are taken to mean the data's token ids"
        ]
    ours = read_tokens(vocab_file)
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
    if do_lower_case is None:
        return ["casing not checked: the data's manifest does not say do_lower_case"]
    if bool(cased) == bool(do_lower_case):
        kind = f"cased (e.g. {cased[0]!r})" if cased else "uncased"
        raise ConfigError(
            f"{where}: its vocabulary is {kind} but the data was made with "
            f"do_lower_case={do_lower_case}: make the data again with "
            f"--do_lower_case={not do_lower_case}"
        )
    return []
