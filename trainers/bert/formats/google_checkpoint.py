"""BERT checkpoints in google-research/bert's format: `bert_model.ckpt` (a
TensorFlow checkpoint under that release's variable names), `bert_config.json`
and `vocab.txt`, the format of Google's released models and of the tools
that read them.

One table (`names`) maps the pretraining model's variables to those names,
with the reshapes between keras-hub's attention kernels (hidden x heads x
head size) and google-research's (hidden x hidden); reading (warm start) and
writing (export) both use it.
"""

import json
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from trainers import atomic
from trainers.bert.errors import ConfigError

CHECKPOINT, CONFIG, VOCAB = "bert_model.ckpt", "bert_config.json", "vocab.txt"


class Row(NamedTuple):
    """One tensor: our variable's path, its google-research name, how the
    layouts differ (`kind`: "" as is, "heads" (H,H) <-> (H,n,d),
    "head_bias" (H,) <-> (n,d), "output" (H,H) <-> (n,d,H), "transposed"
    (2,H) <-> (H,2)) and its shape in google-research's layout, one letter a
    dimension (`DIMENSIONS`)."""

    ours: str
    theirs: str
    kind: str
    dims: str


_EMBEDDINGS = [
    Row("token_embedding/embeddings", "bert/embeddings/word_embeddings", "", "VH"),
    Row("position_embedding/embeddings", "bert/embeddings/position_embeddings", "", "PH"),
    Row("segment_embedding/embeddings", "bert/embeddings/token_type_embeddings", "", "SH"),
    Row("embeddings_layer_norm/gamma", "bert/embeddings/LayerNorm/gamma", "", "H"),
    Row("embeddings_layer_norm/beta", "bert/embeddings/LayerNorm/beta", "", "H"),
]
_LAYER = [
    Row("self_attention_layer/query/kernel", "attention/self/query/kernel", "heads", "HH"),
    Row("self_attention_layer/query/bias", "attention/self/query/bias", "head_bias", "H"),
    Row("self_attention_layer/key/kernel", "attention/self/key/kernel", "heads", "HH"),
    Row("self_attention_layer/key/bias", "attention/self/key/bias", "head_bias", "H"),
    Row("self_attention_layer/value/kernel", "attention/self/value/kernel", "heads", "HH"),
    Row("self_attention_layer/value/bias", "attention/self/value/bias", "head_bias", "H"),
    Row(
        "self_attention_layer/attention_output/kernel",
        "attention/output/dense/kernel",
        "output",
        "HH",
    ),  # fmt: skip
    Row("self_attention_layer/attention_output/bias", "attention/output/dense/bias", "", "H"),
    Row("self_attention_layer_norm/gamma", "attention/output/LayerNorm/gamma", "", "H"),
    Row("self_attention_layer_norm/beta", "attention/output/LayerNorm/beta", "", "H"),
    Row("feedforward_intermediate_dense/kernel", "intermediate/dense/kernel", "", "HI"),
    Row("feedforward_intermediate_dense/bias", "intermediate/dense/bias", "", "I"),
    Row("feedforward_output_dense/kernel", "output/dense/kernel", "", "IH"),
    Row("feedforward_output_dense/bias", "output/dense/bias", "", "H"),
    Row("feedforward_layer_norm/gamma", "output/LayerNorm/gamma", "", "H"),
    Row("feedforward_layer_norm/beta", "output/LayerNorm/beta", "", "H"),
]
_POOLER = [
    Row("pooled_dense/kernel", "bert/pooler/dense/kernel", "", "HH"),
    Row("pooled_dense/bias", "bert/pooler/dense/bias", "", "H"),
]
MLM_HEAD = [
    Row("mlm_head/intermediate_dense/kernel", "cls/predictions/transform/dense/kernel", "", "HH"),
    Row("mlm_head/intermediate_dense/bias", "cls/predictions/transform/dense/bias", "", "H"),
    Row(
        "mlm_head/intermediate_layer_norm/gamma",
        "cls/predictions/transform/LayerNorm/gamma",
        "",
        "H",
    ),  # fmt: skip
    Row(
        "mlm_head/intermediate_layer_norm/beta", "cls/predictions/transform/LayerNorm/beta", "", "H"
    ),  # fmt: skip
    Row("mlm_head/output_bias", "cls/predictions/output_bias", "", "V"),
]
NSP_HEAD = [
    Row("nsp_head/kernel", "cls/seq_relationship/output_weights", "transposed", "2H"),
    Row("nsp_head/bias", "cls/seq_relationship/output_bias", "", "2"),
]


def encoder_names(num_layers):
    """The encoder's rows."""
    layers = [
        row._replace(
            ours=f"transformer_layer_{i}/{row.ours}", theirs=f"bert/encoder/layer_{i}/{row.theirs}"
        )  # fmt: skip
        for i in range(num_layers)
        for row in _LAYER
    ]
    return _EMBEDDINGS + layers + _POOLER


def names(num_layers):
    return encoder_names(num_layers) + MLM_HEAD + NSP_HEAD


def google_shape(row, config):
    """The shape of `row`'s tensor in a google-research checkpoint of a BERT
    of `config` (a `model.BertConfig`)."""
    dimensions = {
        "V": config.vocabulary_size,
        "P": config.max_sequence_length,
        "S": config.num_segments,
        "H": config.hidden_dim,
        "I": config.intermediate_dim,
        "2": 2,
    }
    return tuple(dimensions[d] for d in row.dims)


def our_shape(row, config):
    """The shape of `row`'s variable in the model here."""
    shape = google_shape(row, config)
    n, h = config.num_heads, config.hidden_dim
    return {
        "heads": (h, n, h // n),
        "head_bias": (n, h // n),
        "output": (n, h // n, h),
        "transposed": shape[::-1],
    }.get(row.kind, shape)


def to_google(value, row, config):
    """`value` (of `our_shape(row, config)`) in google-research's layout."""
    if row.kind == "transposed":
        return value.T
    return value.reshape(google_shape(row, config))


def from_google(value, row, config):
    """`value` (of `google_shape(row, config)`) in our variable's layout."""
    if row.kind == "transposed":
        return value.T
    return value.reshape(our_shape(row, config))


# --------------------------------------------------------------------- config


def write_config(config, path):
    """A `bert_config.json` as google-research/bert writes it."""
    raw = {
        "attention_probs_dropout_prob": config.dropout,
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.dropout,
        "hidden_size": config.hidden_dim,
        "initializer_range": 0.02,
        "intermediate_size": config.intermediate_dim,
        "max_position_embeddings": config.max_sequence_length,
        "num_attention_heads": config.num_heads,
        "num_hidden_layers": config.num_layers,
        "type_vocab_size": config.num_segments,
        "vocab_size": config.vocabulary_size,
    }
    atomic.write_text(path, json.dumps(raw, indent=2, sort_keys=True))


# ----------------------------------------------------------------- checkpoints


def is_checkpoint(path):
    """Whether `path` is a TensorFlow checkpoint prefix (bert_model.ckpt)."""
    return tf.io.gfile.exists(f"{path}.index")


def read(path):
    """{google-research name: array} of a checkpoint; errors name it."""
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable TensorFlow checkpoint ({error})") from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def write(model, config, vocab_file, output_dir):
    """`model` (the pretraining model, or an encoder) as bert_model.ckpt,
    bert_config.json and vocab.txt in `output_dir`; returns the folder.
    The checkpoint is written under a temporary prefix and renamed
    (trainers/atomic.py), index last: a reader never takes a half-written
    one for a checkpoint."""
    ours = {v.path: np.asarray(v.numpy()) for v in model.weights}
    rows = [row for row in names(config.num_layers) if row.ours in ours]
    tf.io.gfile.makedirs(output_dir)
    prefix = os.path.join(output_dir, CHECKPOINT)
    tensors = [tf.constant(to_google(ours[row.ours], row, config)) for row in rows]
    with atomic.temporary_path(prefix, suffixes=(".data-00000-of-00001", ".index")) as tmp:
        tf.raw_ops.SaveV2(
            prefix=tmp,
            tensor_names=[row.theirs for row in rows],
            shape_and_slices=[""] * len(rows),
            tensors=tensors,
        )
    write_config(config, os.path.join(output_dir, CONFIG))
    if vocab_file:
        tf.io.gfile.copy(vocab_file, os.path.join(output_dir, VOCAB), overwrite=True)
    return output_dir
