import keras
import keras_hub
import pytest

import lamb_tf
from lamb_tf.exclusions import PathPatterns


def _bert_paths():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    return backbone.trainable_variables


def test_patterns_match_keras_hub_bert_paths():
    patterns = PathPatterns(["layer_norm", "bias"], "exclude_from_weight_decay")
    matched = {v.path for v in _bert_paths() if patterns.matches(v)}
    assert "embeddings_layer_norm/gamma" in matched
    assert "transformer_layer_0/self_attention_layer/query/bias" in matched
    assert "transformer_layer_0/feedforward_output_dense/kernel" not in matched
    assert "token_embedding/embeddings" not in matched


def test_tf1_style_layernorm_name_matches_full_path():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="dense")(inputs)
    outputs = keras.layers.LayerNormalization(name="LayerNorm")(x)
    model = keras.Model(inputs, outputs)
    patterns = PathPatterns(["LayerNorm", "bias"], "exclude_from_weight_decay")
    matched = sorted(v.path for v in model.trainable_variables if patterns.matches(v))
    assert matched == ["LayerNorm/beta", "LayerNorm/gamma", "dense/bias"]


def test_optimizer_applies_lists_to_variables():
    variables = _bert_paths()
    optimizer = lamb_tf.LAMB(
        weight_decay=0.01,
        exclude_from_weight_decay=["layer_norm", "bias"],
        exclude_from_layer_adaptation=["embeddings$"],
    )
    optimizer.build(variables)
    rules = optimizer.variable_rules
    assert rules["pooled_dense/kernel"] == {"weight_decay": True, "layer_adaptation": True}
    assert rules["pooled_dense/bias"] == {"weight_decay": False, "layer_adaptation": True}
    assert rules["token_embedding/embeddings"] == {
        "weight_decay": True,
        "layer_adaptation": False,
    }
    assert list(rules) == [v.path for v in variables]


def test_keras_exclude_method_is_honoured():
    variables = _bert_paths()
    optimizer = lamb_tf.LAMB(weight_decay=0.01)
    optimizer.exclude_from_weight_decay(var_list=[variables[0]])
    optimizer.build(variables)
    assert optimizer._decays[0] is False and optimizer._decays[1] is True


@pytest.mark.parametrize("argument", ["exclude_from_weight_decay", "exclude_from_layer_adaptation"])
def test_invalid_expression_names_argument_and_pattern(argument):
    with pytest.raises(ValueError, match=rf"{argument}.*'\[unclosed'"):
        lamb_tf.LAMB(**{argument: ["bias", "[unclosed"]})


def test_string_instead_of_list_is_an_error():
    with pytest.raises(ValueError, match="exclude_from_weight_decay.*not a string"):
        lamb_tf.LAMB(exclude_from_weight_decay="bias")
