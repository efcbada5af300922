"""The BERT pretraining model: its configuration (a preset size or a
`bert_config.json`), keras-hub's `BertBackbone` built from it (never
downloaded), a masked-LM head tied to the token embedding, a next-sentence
head on the pooled output, and the two losses."""

import contextlib
import dataclasses
import os

import keras
import keras_hub
from keras import ops

from trainers.bert import settings
from trainers.bert.errors import ConfigError, read_json


@dataclasses.dataclass(frozen=True)
class BertConfig:
    num_layers: int
    hidden_dim: int
    num_heads: int
    intermediate_dim: int
    vocabulary_size: int = 30522
    max_sequence_length: int = 512
    num_segments: int = 2
    dropout: float = 0.1


# Sizes of Google's BERT models (the miniatures of Turc et al., 2019, and
# base and large of Devlin et al., 2019).
PRESETS = {
    "tiny": BertConfig(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": BertConfig(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "small": BertConfig(num_layers=4, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "medium": BertConfig(num_layers=8, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "base": BertConfig(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
    "large": BertConfig(num_layers=24, hidden_dim=1024, num_heads=16, intermediate_dim=4096),
}


def preset(name, **overrides):
    if name not in PRESETS:
        raise ValueError(f"Unknown BERT size {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


# bert_config.json fields that change what a model computes beyond its
# shape, and the one value the model here computes. "gelu" is
# google-research/bert's name for its tanh approximation (`gelu_tanh`); the
# other two are fields other writers add.
FUNCTION_FIELDS = {
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
}


def read_bert_config(path):
    """A google-research/bert `bert_config.json` -> BertConfig; a field that
    would make the checkpoint's model compute another function is refused
    (ConfigError naming the file and field). Dropout rates are training
    settings: the run's own apply."""
    raw = read_json(path, "bert_config.json", ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"bert_config.json {path}: not a JSON object")
    missing = [
        k
        for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        if k not in raw
    ]
    if missing:
        raise ConfigError(f"bert_config.json {path}: missing {missing}")
    for field, value in FUNCTION_FIELDS.items():
        if raw.get(field, value) != value:
            raise ConfigError(
                f"bert_config.json {path}: {field} {raw[field]!r}, but this BERT computes "
                f"{field} {value!r} (google-research/bert's)"
            )
    return BertConfig(
        num_layers=raw["num_hidden_layers"],
        hidden_dim=raw["hidden_size"],
        num_heads=raw["num_attention_heads"],
        intermediate_dim=raw["intermediate_size"],
        vocabulary_size=raw.get("vocab_size", 30522),
        max_sequence_length=raw.get("max_position_embeddings", 512),
        num_segments=raw.get("type_vocab_size", 2),
        dropout=raw.get("hidden_dropout_prob", 0.1),
    )


def bert_config(model, overrides=None, vocab_file=None):
    """`train.model` (a preset name or a bert_config.json path) with
    `train.model_overrides` applied, and the vocabulary's size; errors name
    the setting."""
    if model in PRESETS:
        config = preset(model)
    elif os.path.exists(model):
        config = read_bert_config(model)
    else:
        raise ConfigError(
            f"train.model={model!r} is neither a preset ({', '.join(PRESETS)}) "
            "nor an existing bert_config.json"
        )
    overrides = dict(overrides or {})
    unknown = set(overrides) - {f.name for f in dataclasses.fields(config)}
    if unknown:
        raise ConfigError(f"train.model_overrides: unknown fields {sorted(unknown)}")
    if vocab_file:
        from trainers.bert.data.shards.vocab import Vocabulary  # reads through TensorFlow

        size = len(Vocabulary(vocab_file))
        given = overrides.get("vocabulary_size")
        if given is not None and given != size:
            raise ConfigError(
                f"train.model_overrides vocabulary_size={given} but {vocab_file} holds {size}"
            )
        if model not in PRESETS and config.vocabulary_size != size:
            raise ConfigError(f"{model}: vocab_size {config.vocabulary_size}, {vocab_file}: {size}")
        overrides["vocabulary_size"] = size
    config = dataclasses.replace(config, **overrides)
    for field in dataclasses.fields(config):
        name = f"train.model ({model}) {field.name}"
        if field.name == "dropout":
            if settings.number(name, config.dropout, 0.0, 1.0) == 1.0:
                raise ConfigError(f"{name} must be below 1 (1 drops everything)")
        else:
            settings.integer(name, getattr(config, field.name))
    if config.hidden_dim % config.num_heads:
        raise ConfigError(
            f"train.model ({model}): hidden_dim {config.hidden_dim} is not divisible by "
            f"num_heads {config.num_heads}"
        )
    return config


@contextlib.contextmanager
def dtype_policy(precision):
    """Layers built inside take `precision` ("float32", "mixed_bfloat16",
    "mixed_float16"); the previous policy comes back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_backbone(config, name="bert_backbone"):
    """keras-hub's `BertBackbone` of `config`, randomly initialised."""
    return keras_hub.models.BertBackbone(
        vocabulary_size=config.vocabulary_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        dropout=config.dropout,
        max_sequence_length=config.max_sequence_length,
        num_segments=config.num_segments,
        name=name,
    )


@keras.saving.register_keras_serializable(package="trainers.bert")
def gelu_tanh(x):
    """google-research/bert's GELU, the tanh approximation, in its masked-LM
    transform as in its encoder (keras-hub's `BertBackbone` uses it too).
    Google's released checkpoints were trained with it, and a warm start
    from them must compute the function they learned: keras-hub's own
    `BertMaskedLM` head uses the exact (erf) GELU instead, which moves
    their masked-LM logits by about 6e-3."""
    return keras.activations.gelu(x, approximate=True)


def build_pretraining_model(config, max_predictions=None):
    """Inputs: token_ids, segment_ids, padding_mask (length L) and
    masked_lm_positions (P; None: any, so phases may differ). Outputs:
    `mlm_logits` (P x vocabulary) and `nsp_logits` (2). The encoder is
    `model.get_layer("bert_backbone")`."""
    backbone = build_backbone(config)
    inputs = {
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "segment_ids": keras.Input((None,), dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input((None,), dtype="int32", name="padding_mask"),
        "masked_lm_positions": keras.Input(
            (max_predictions,), dtype="int32", name="masked_lm_positions"
        ),
    }
    encoded = backbone({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")})
    mlm_logits = keras_hub.layers.MaskedLMHead(
        token_embedding=backbone.token_embedding,
        intermediate_activation=gelu_tanh,
        layer_norm_epsilon=1e-12,
        name="mlm_head",
    )(encoded["sequence_output"], inputs["masked_lm_positions"])
    nsp_logits = keras.layers.Dense(2, name="nsp_head")(encoded["pooled_output"])
    return keras.Model(
        inputs, {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}, name="bert_pretraining"
    )


# The model's inputs among a batch's features.
INPUTS = ("token_ids", "segment_ids", "padding_mask", "masked_lm_positions")
SUMS = ("mlm_loss_sum", "mlm_correct", "mlm_weight", "nsp_loss_sum", "nsp_correct", "sequences")


def pretraining_sums(outputs, batch):
    """Sums over the batch, in SUMS order, so that batches split across
    micro-batches and replicas add up to the figures of the whole batch:
    masked-LM loss and hits weighted by `masked_lm_weights`, their total
    weight, next-sentence loss and hits, and the number of sequences."""
    mlm_logits = ops.cast(outputs["mlm_logits"], "float32")
    nsp_logits = ops.cast(outputs["nsp_logits"], "float32")
    weights = ops.cast(batch["masked_lm_weights"], "float32")
    mlm_ids = batch["masked_lm_ids"]
    per_token = keras.losses.sparse_categorical_crossentropy(mlm_ids, mlm_logits, from_logits=True)
    mlm_hit = ops.cast(ops.equal(ops.argmax(mlm_logits, -1), ops.cast(mlm_ids, "int32")), "float32")
    nsp_labels = batch["next_sentence_labels"]
    nsp_loss = keras.losses.sparse_categorical_crossentropy(
        nsp_labels, nsp_logits, from_logits=True
    )
    nsp_hit = ops.cast(
        ops.equal(ops.argmax(nsp_logits, -1), ops.cast(nsp_labels, "int32")), "float32"
    )
    return (
        ops.sum(per_token * weights),
        ops.sum(mlm_hit * weights),
        ops.sum(weights),
        ops.sum(nsp_loss),
        ops.sum(nsp_hit),
        ops.cast(ops.shape(nsp_labels)[0], "float32"),
    )


def losses_from_sums(sums):
    """Means from `pretraining_sums` (of one batch or added over several):
    0, never NaN, where a batch has no masked-LM targets."""
    mlm_loss_sum, mlm_correct, mlm_weight, nsp_loss_sum, nsp_correct, sequences = sums
    safe_weight = ops.maximum(mlm_weight, 1e-6)
    sequences = ops.maximum(sequences, 1.0)
    mlm_loss = mlm_loss_sum / safe_weight
    nsp_loss = nsp_loss_sum / sequences
    return {
        "loss": mlm_loss + nsp_loss,
        "mlm_loss": mlm_loss,
        "nsp_loss": nsp_loss,
        "mlm_accuracy": mlm_correct / safe_weight,
        "mlm_weight": mlm_weight,
        "nsp_accuracy": nsp_correct / sequences,
    }
