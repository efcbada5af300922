"""The pretraining model: tied masked-LM head, losses safe on empty batches,
configs from presets and bert_config.json, the encoder usable in keras-hub."""

import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from trainers.bert.data import patterns
from trainers.bert.data.input import pipeline
from trainers.bert.model import bert as model


@pytest.fixture(scope="module")
def tiny(builtin_data):
    folder, manifest = builtin_data
    config = model.preset("tiny", vocabulary_size=manifest["vocab_size"], max_sequence_length=128)
    files = patterns.match_files(str(folder / "*.tfrecord"))
    batch = next(iter(pipeline.make_dataset(files, 128, 20, batch_size=4, shuffle=False)))
    # Seeded: on 4 sequences an unlucky initialisation's next-sentence loss
    # can stray from log(2) by more than the bound below.
    keras.utils.set_random_seed(0)
    return model.build_pretraining_model(config, 20), batch


def _inputs(batch):
    keys = ("token_ids", "segment_ids", "padding_mask", "masked_lm_positions")
    return {k: batch[k] for k in keys}


def test_outputs_and_finite_losses(tiny):
    net, batch = tiny
    outputs = net(_inputs(batch))
    assert outputs["mlm_logits"].shape == (4, 20, net.get_layer("bert_backbone").vocabulary_size)
    assert outputs["nsp_logits"].shape == (4, 2)
    losses = model.losses_from_sums(model.pretraining_sums(outputs, batch))
    vocab_size = outputs["mlm_logits"].shape[-1]
    # An untrained model is near chance: loss about log(vocabulary) + log(2).
    assert abs(float(losses["mlm_loss"]) - np.log(vocab_size)) < 1.5
    assert abs(float(losses["nsp_loss"]) - np.log(2)) < 0.5
    assert 0 <= float(losses["mlm_accuracy"]) <= 1


def test_mlm_head_is_tied_to_the_token_embedding(tiny):
    net, _ = tiny
    embedding = net.get_layer("bert_backbone").token_embedding.embeddings
    big = [w for w in net.get_layer("mlm_head").trainable_weights if w.shape == embedding.shape]
    assert len(big) == 1 and big[0] is embedding  # the head's output matrix is the embedding
    shapes = [tuple(w.shape) for w in net.trainable_weights]
    assert shapes.count(tuple(embedding.shape)) == 1  # no second vocabulary matrix


def test_empty_batch_gives_zero_loss_and_finite_gradients(tiny):
    net, batch = tiny
    empty = dict(batch, masked_lm_weights=tf.zeros_like(batch["masked_lm_weights"]))
    with tf.GradientTape() as tape:
        losses = model.losses_from_sums(model.pretraining_sums(net(_inputs(empty)), empty))
    assert float(losses["mlm_loss"]) == 0.0 and float(losses["mlm_weight"]) == 0.0
    grads = tape.gradient(losses["loss"], net.trainable_variables)
    for g in grads:
        if g is not None:  # IndexedSlices for the embeddings
            assert bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(g))))


def test_presets_have_the_published_sizes():
    base = model.build_pretraining_model(model.preset("base"), 20)
    encoder = base.get_layer("bert_backbone").count_params()
    assert abs(encoder - 109.5e6) < 1e6  # BERT-base: 110M with its heads
    with pytest.raises(ValueError, match="Unknown BERT size 'huge'"):
        model.preset("huge")


def test_reads_google_bert_config(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(
        json.dumps(
            {
                "attention_probs_dropout_prob": 0.1,
                "hidden_act": "gelu",
                "hidden_dropout_prob": 0.1,
                "hidden_size": 256,
                "initializer_range": 0.02,
                "intermediate_size": 1024,
                "max_position_embeddings": 512,
                "num_attention_heads": 4,
                "num_hidden_layers": 4,
                "type_vocab_size": 2,
                "vocab_size": 30522,
            }
        )
    )
    assert model.read_bert_config(str(path)) == model.preset("mini")
    path.write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="missing"):
        model.read_bert_config(str(path))


def test_encoder_loads_into_keras_hub(tmp_path, tiny):
    net, batch = tiny
    backbone = net.get_layer("bert_backbone")
    path = str(tmp_path / "encoder.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path)  # safe mode
    assert isinstance(loaded, keras_hub.models.BertBackbone)
    features = {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    np.testing.assert_allclose(
        loaded(features)["pooled_output"], backbone(features)["pooled_output"], atol=1e-6
    )
