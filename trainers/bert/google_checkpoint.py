"""BERT checkpoints in google-research/bert's format: `bert_model.ckpt` (a
TensorFlow checkpoint under that release's variable names), `bert_config.json`
and `vocab.txt`, the format of Google's released models and of the tools
that read them.

One table (`NAMES`) maps the pretraining model's variables to those names,
with the reshapes between keras-hub's attention kernels (hidden x heads x
head size) and google-research's (hidden x hidden); reading (warm start) and
writing (export) both use it.
"""

import json
import os

import numpy as np
import tensorflow as tf

from trainers.bert import model as model_lib
from trainers.bert.errors import ConfigError

CHECKPOINT, CONFIG, VOCAB = "bert_model.ckpt", "bert_config.json", "vocab.txt"

# (our path, google-research name, kind); kinds: "" as is, "heads" (H,H) <->
# (H,n,d), "head_bias" (H,) <-> (n,d), "output" (H,H) <-> (n,d,H),
# "transposed" (2,H) <-> (H,2).
_EMBEDDINGS = [
    ("token_embedding/embeddings", "bert/embeddings/word_embeddings", ""),
    ("position_embedding/embeddings", "bert/embeddings/position_embeddings", ""),
    ("segment_embedding/embeddings", "bert/embeddings/token_type_embeddings", ""),
    ("embeddings_layer_norm/gamma", "bert/embeddings/LayerNorm/gamma", ""),
    ("embeddings_layer_norm/beta", "bert/embeddings/LayerNorm/beta", ""),
]
_LAYER = [
    ("self_attention_layer/query/kernel", "attention/self/query/kernel", "heads"),
    ("self_attention_layer/query/bias", "attention/self/query/bias", "head_bias"),
    ("self_attention_layer/key/kernel", "attention/self/key/kernel", "heads"),
    ("self_attention_layer/key/bias", "attention/self/key/bias", "head_bias"),
    ("self_attention_layer/value/kernel", "attention/self/value/kernel", "heads"),
    ("self_attention_layer/value/bias", "attention/self/value/bias", "head_bias"),
    ("self_attention_layer/attention_output/kernel", "attention/output/dense/kernel", "output"),
    ("self_attention_layer/attention_output/bias", "attention/output/dense/bias", ""),
    ("self_attention_layer_norm/gamma", "attention/output/LayerNorm/gamma", ""),
    ("self_attention_layer_norm/beta", "attention/output/LayerNorm/beta", ""),
    ("feedforward_intermediate_dense/kernel", "intermediate/dense/kernel", ""),
    ("feedforward_intermediate_dense/bias", "intermediate/dense/bias", ""),
    ("feedforward_output_dense/kernel", "output/dense/kernel", ""),
    ("feedforward_output_dense/bias", "output/dense/bias", ""),
    ("feedforward_layer_norm/gamma", "output/LayerNorm/gamma", ""),
    ("feedforward_layer_norm/beta", "output/LayerNorm/beta", ""),
]
_POOLER = [
    ("pooled_dense/kernel", "bert/pooler/dense/kernel", ""),
    ("pooled_dense/bias", "bert/pooler/dense/bias", ""),
]
MLM_HEAD = [
    ("mlm_head/intermediate_dense/kernel", "cls/predictions/transform/dense/kernel", ""),
    ("mlm_head/intermediate_dense/bias", "cls/predictions/transform/dense/bias", ""),
    ("mlm_head/intermediate_layer_norm/gamma", "cls/predictions/transform/LayerNorm/gamma", ""),
    ("mlm_head/intermediate_layer_norm/beta", "cls/predictions/transform/LayerNorm/beta", ""),
    ("mlm_head/output_bias", "cls/predictions/output_bias", ""),
]
NSP_HEAD = [
    ("nsp_head/kernel", "cls/seq_relationship/output_weights", "transposed"),
    ("nsp_head/bias", "cls/seq_relationship/output_bias", ""),
]


def encoder_names(num_layers):
    """The encoder's (our path, google-research name, kind) rows."""
    layers = [
        (f"transformer_layer_{i}/{ours}", f"bert/encoder/layer_{i}/{theirs}", kind)
        for i in range(num_layers)
        for ours, theirs, kind in _LAYER
    ]
    return _EMBEDDINGS + layers + _POOLER


def names(num_layers):
    return encoder_names(num_layers) + MLM_HEAD + NSP_HEAD


def to_google(value, kind):
    if kind in ("heads", "head_bias"):
        return value.reshape(value.shape[0], -1) if kind == "heads" else value.reshape(-1)
    if kind == "output":
        return value.reshape(-1, value.shape[-1])
    return value.T if kind == "transposed" else value


def from_google(value, kind, shape=None):
    """`value` in the layout of our variable (of `shape`, for the
    reshaped kinds)."""
    if kind == "transposed":
        return value.T
    return value if shape is None else value.reshape(shape)


# --------------------------------------------------------------------- config


def read_config(path):
    """`bert_config.json` -> `model.BertConfig` (errors name the file)."""
    try:
        return model_lib.read_bert_config(path)
    except (OSError, ValueError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None


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
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(raw, f, indent=2, sort_keys=True)


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
    The checkpoint is written under a temporary prefix and renamed, index
    last: a reader never takes a half-written one for a checkpoint."""
    ours = {v.path: np.asarray(v.numpy()) for v in model.weights}
    rows = [row for row in names(config.num_layers) if row[0] in ours]
    tf.io.gfile.makedirs(output_dir)
    prefix = os.path.join(output_dir, CHECKPOINT)
    tmp = f"{prefix}.tmp-{os.getpid()}"
    tensors = [tf.constant(to_google(ours[path], kind)) for path, _, kind in rows]
    tf.raw_ops.SaveV2(
        prefix=tmp,
        tensor_names=[name for _, name, _ in rows],
        shape_and_slices=[""] * len(rows),
        tensors=tensors,
    )
    for suffix in (".data-00000-of-00001", ".index"):
        tf.io.gfile.rename(tmp + suffix, prefix + suffix, overwrite=True)
    write_config(config, os.path.join(output_dir, CONFIG))
    if vocab_file:
        tf.io.gfile.copy(vocab_file, os.path.join(output_dir, VOCAB), overwrite=True)
    return output_dir
