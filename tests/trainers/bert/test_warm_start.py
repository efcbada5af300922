"""Warm start from a google-research/bert checkpoint (written here under that
release's variable names, independently of the trainer's own table) and from
a keras-hub preset; the export to google-research's format read back; bad
checkpoints stopped before any step."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainers.bert import model as model_lib
from trainers.bert import train
from trainers.bert.data import builtin
from trainers.bert.errors import ConfigError
from trainers.bert.phases import Phase

pytestmark = pytest.mark.slow
SEQ, PREDICTIONS = 32, 5
CONFIG = model_lib.preset("tiny", vocabulary_size=4096, dropout=0.0)


def _phase(steps=1, learning_rate=1e-12):
    return Phase(seq_length=SEQ, max_predictions=PREDICTIONS, global_batch_size=8, steps=steps,
                 peak_learning_rate=learning_rate)  # fmt: skip


def _train(model_dir, data_dir, **kwargs):
    settings = dict(phases=[_phase()], model_overrides={"dropout": 0.0}, steps_per_loop=1,
                    eval_steps=1, data_dir=data_dir, peak_flops=1e11, tensorboard=False,
                    export=False)  # fmt: skip
    return train.train(str(model_dir), **{**settings, **kwargs})


def _google_names(source):
    """{google-research name: array} of `source`'s weights, as the released
    checkpoints name and lay them out."""
    w = {v.path: v.numpy() for v in source.weights}
    h = CONFIG.hidden_dim
    found = {
        "bert/embeddings/word_embeddings": w["token_embedding/embeddings"],
        "bert/embeddings/position_embeddings": w["position_embedding/embeddings"],
        "bert/embeddings/token_type_embeddings": w["segment_embedding/embeddings"],
        "bert/embeddings/LayerNorm/gamma": w["embeddings_layer_norm/gamma"],
        "bert/embeddings/LayerNorm/beta": w["embeddings_layer_norm/beta"],
        "bert/pooler/dense/kernel": w["pooled_dense/kernel"],
        "bert/pooler/dense/bias": w["pooled_dense/bias"],
        "cls/predictions/transform/dense/kernel": w["mlm_head/intermediate_dense/kernel"],
        "cls/predictions/transform/dense/bias": w["mlm_head/intermediate_dense/bias"],
        "cls/predictions/transform/LayerNorm/gamma": w["mlm_head/intermediate_layer_norm/gamma"],
        "cls/predictions/transform/LayerNorm/beta": w["mlm_head/intermediate_layer_norm/beta"],
        "cls/predictions/output_bias": w["mlm_head/output_bias"],
        "cls/seq_relationship/output_weights": w["nsp_head/kernel"].T,  # [2, hidden]
        "cls/seq_relationship/output_bias": w["nsp_head/bias"],
    }
    for i in range(CONFIG.num_layers):
        ours, theirs = f"transformer_layer_{i}/", f"bert/encoder/layer_{i}/"
        for name in ("query", "key", "value"):
            found[f"{theirs}attention/self/{name}/kernel"] = w[
                f"{ours}self_attention_layer/{name}/kernel"
            ].reshape(h, h)
            found[f"{theirs}attention/self/{name}/bias"] = w[
                f"{ours}self_attention_layer/{name}/bias"
            ].reshape(h)
        pairs = {
            "attention/output/dense/bias": "self_attention_layer/attention_output/bias",
            "attention/output/LayerNorm/gamma": "self_attention_layer_norm/gamma",
            "attention/output/LayerNorm/beta": "self_attention_layer_norm/beta",
            "intermediate/dense/kernel": "feedforward_intermediate_dense/kernel",
            "intermediate/dense/bias": "feedforward_intermediate_dense/bias",
            "output/dense/kernel": "feedforward_output_dense/kernel",
            "output/dense/bias": "feedforward_output_dense/bias",
            "output/LayerNorm/gamma": "feedforward_layer_norm/gamma",
            "output/LayerNorm/beta": "feedforward_layer_norm/beta",
        }
        for name, path in pairs.items():
            found[theirs + name] = w[ours + path]
        found[f"{theirs}attention/output/dense/kernel"] = w[
            f"{ours}self_attention_layer/attention_output/kernel"
        ].reshape(h, h)
    return found


def _write_google(folder, arrays, config=None, vocab=builtin.KEPT_VOCAB):
    """A TF1-format bert_model.ckpt (tf.compat.v1's Saver, as google-research
    saved them), bert_config.json and vocab.txt."""
    os.makedirs(folder, exist_ok=True)
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(v, name=n) for n, v in arrays.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, os.path.join(folder, "bert_model.ckpt"), write_meta_graph=False)
    config = config or CONFIG
    (folder / "bert_config.json").write_text(json.dumps({
        "hidden_size": config.hidden_dim, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "intermediate_size": config.intermediate_dim,
        "vocab_size": config.vocabulary_size, "max_position_embeddings": 512,
        "type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    }))  # fmt: skip
    shutil.copyfile(vocab, folder / "vocab.txt")
    return str(folder)


@pytest.fixture(scope="module")
def source():
    """A tiny BERT with random weights (biases and LayerNorms too), as
    someone else's pretraining would leave it."""
    keras.utils.set_random_seed(7)
    net = model_lib.build_pretraining_model(CONFIG)
    for v in net.weights:
        v.assign(np.random.default_rng(len(v.path)).normal(0, 0.05, v.shape))
    return net


def _mlm_logits(net, batch):
    keys = ("token_ids", "segment_ids", "padding_mask", "masked_lm_positions")
    outputs = net({k: batch[k] for k in keys}, training=False)
    return outputs["mlm_logits"].numpy(), outputs["nsp_logits"].numpy()


@pytest.fixture(scope="module")
def batch(builtin_data_dir):
    from trainers.bert.data import patterns, pipeline

    pattern, _ = builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    files = patterns.match_files(pattern)
    return next(iter(pipeline.make_dataset(files, SEQ, PREDICTIONS, batch_size=4, shuffle=False)))


def test_google_checkpoint_warm_start_gives_the_source_logits(
    tmp_path, source, batch, builtin_data_dir, capsys
):
    folder = _write_google(tmp_path / "uncased_L-2_H-128_A-2", _google_names(source))
    run = _train(tmp_path / "run", builtin_data_dir, init_checkpoint=folder)
    output = capsys.readouterr().out
    assert f"warm start from google-research checkpoint {folder}/bert_model.ckpt" in output
    assert "initialised at random: none" in output
    assert run["step"] == 1 and int(run["optimizer"].iterations) == 1  # fresh state
    for ours, theirs in zip(_mlm_logits(run["model"], batch), _mlm_logits(source, batch)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # A restart resumes its own checkpoint and leaves the warm start aside.
    again = _train(tmp_path / "run", builtin_data_dir, init_checkpoint=folder, phases=[_phase(2)])
    assert again["step"] == 2 and "init_checkpoint left aside" in capsys.readouterr().out


def test_export_reads_back_and_a_preset_warm_starts_the_encoder(
    tmp_path, batch, builtin_data_dir, capsys
):
    first = _train(tmp_path / "first", builtin_data_dir, phases=[_phase(2, 1e-2)], export=True)
    exported = tmp_path / "first" / "google_checkpoint"
    assert sorted(os.listdir(exported)) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
        "vocab.txt",
    ]  # fmt: skip
    names = dict(tf.train.list_variables(str(exported / "bert_model.ckpt")))
    assert names["bert/encoder/layer_1/attention/self/query/kernel"] == [128, 128]
    assert names["cls/seq_relationship/output_weights"] == [2, 128]
    round_trip = _train(tmp_path / "second", builtin_data_dir, init_checkpoint=str(exported))
    for ours, theirs in zip(
        _mlm_logits(round_trip["model"], batch), _mlm_logits(first["model"], batch)
    ):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # The keras-hub preset holds the encoder only: the heads start at random.
    preset = _train(tmp_path / "third", builtin_data_dir,
                    init_checkpoint=str(tmp_path / "first" / "encoder"))  # fmt: skip
    assert "initialised at random: mlm_head, nsp_head" in capsys.readouterr().out
    encoder = preset["model"].get_layer("bert_backbone").token_embedding.embeddings.numpy()
    expected = first["model"].get_layer("bert_backbone").token_embedding.embeddings.numpy()
    np.testing.assert_allclose(encoder, expected, rtol=0, atol=1e-6)


def test_mismatches_stop_before_anything_is_written(tmp_path, source, builtin_data_dir):
    arrays = _google_names(source)
    folder = _write_google(
        tmp_path / "small", arrays, model_lib.preset("mini", vocabulary_size=4096)
    )
    with pytest.raises(
        ConfigError, match="has another shape: num_layers 4 there, 2 in train.model"
    ):
        _train(tmp_path / "run", builtin_data_dir, init_checkpoint=folder)
    tokens = open(builtin.KEPT_VOCAB).read().splitlines()
    tokens[100], tokens[101] = tokens[101], tokens[100]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n")
    folder = _write_google(tmp_path / "other_vocab", arrays, vocab=tmp_path / "vocab.txt")
    with pytest.raises(ConfigError, match="first difference at line 101"):
        _train(tmp_path / "run", builtin_data_dir, init_checkpoint=folder)
    (tmp_path / "short.txt").write_text("\n".join(tokens[:-1]) + "\n")
    folder = _write_google(tmp_path / "short_vocab", arrays, vocab=tmp_path / "short.txt")
    with pytest.raises(ConfigError, match="vocab.txt holds 4095 tokens, .* says vocab_size 4096"):
        _train(tmp_path / "run", builtin_data_dir, init_checkpoint=folder)
    del arrays["bert/encoder/layer_1/output/dense/kernel"]
    folder = _write_google(tmp_path / "partial", arrays)
    with pytest.raises(ConfigError, match="lacks bert/encoder/layer_1/output/dense/kernel"):
        _train(tmp_path / "run", builtin_data_dir, init_checkpoint=folder)
    with pytest.raises(ConfigError, match="neither a keras-hub preset folder"):
        _train(tmp_path / "run", builtin_data_dir, init_checkpoint=str(tmp_path))
    assert not os.path.exists(tmp_path / "run" / "run.json")
