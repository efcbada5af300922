"""Warm start from a checkpoint written by google-research/bert's own graph
(its modeling.py and run_pretraining.py's heads, `tests/google_bert.py`) on
both engines, computing that graph's function; the export restored by that
graph; a keras-hub preset; and bad checkpoints stopped before anything is
written."""

import dataclasses
import functools
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import google_bert
from tests.conftest import requires
from tests.float32 import forward_atol
from tests.scripts import run_process
from tests.trainers.bert import runs
from trainers.bert.data.shards import builtin
from trainers.bert.errors import ConfigError
from trainers.bert.formats import google_checkpoint, warm_start
from trainers.bert.model import bert as model_lib

pytestmark = pytest.mark.slow
SEQ, PREDICTIONS = runs.SEQ_LENGTH, runs.MAX_PREDICTIONS
CONFIG = model_lib.preset("tiny", vocabulary_size=4096, dropout=0.0)
# The additions behind each output, for `forward_atol`: in each layer
# those of a query, an attention score (head size), a weighted sum of
# values (sequence), the attention output, the intermediate and the output
# projections; then the pooler or the masked-LM transform, the logits and
# the soft-max.
H, FFN, V = CONFIG.hidden_dim, CONFIG.intermediate_dim, CONFIG.vocabulary_size
ENCODER_TERMS = CONFIG.num_layers * (H + H // CONFIG.num_heads + SEQ + H + H + FFN)
TERMS = {
    "sequence_output": ENCODER_TERMS,
    "pooled_output": ENCODER_TERMS + H,
    "mlm_log_probs": ENCODER_TERMS + H + H + V,
    "nsp_log_probs": ENCODER_TERMS + H + H + 2,
}
v1 = tf.compat.v1


# One step at a learning rate of 1e-12: the weights stay the warm start's.
STEP = runs.phase(steps=1, peak_learning_rate=1e-12)
# One step a loop; checkpoints at the trainer's default interval (at the
# phase end only), no export unless asked.
_train = functools.partial(
    runs.train, phases=[STEP], steps_per_loop=1, checkpoint_every=100, export=False
)


def _google_config(**changes):
    modeling = google_bert.modules()[0]
    raw = dict(vocab_size=CONFIG.vocabulary_size, hidden_size=CONFIG.hidden_dim,
               num_hidden_layers=CONFIG.num_layers, num_attention_heads=CONFIG.num_heads,
               intermediate_size=CONFIG.intermediate_dim, hidden_act="gelu",
               max_position_embeddings=CONFIG.max_sequence_length,
               type_vocab_size=CONFIG.num_segments)  # fmt: skip
    return modeling.BertConfig(**{**raw, **changes})


def _random(rng, name, shape):
    """Random weights that keep every layer's inputs near unit variance (so
    each GELU sees values where its two forms differ): kernels of standard
    deviation 1/sqrt(fan-in), embeddings 0.5, biases and LayerNorm offsets
    0.1, LayerNorm scales 1 +- 0.1."""
    if name.endswith("gamma:0"):
        value = rng.normal(1.0, 0.1, shape)
    elif len(shape) == 2 and "embeddings" not in name:
        fan_in = shape[1] if name.endswith("output_weights:0") else shape[0]
        value = rng.normal(0.0, 1 / np.sqrt(fan_in), shape)
    else:
        value = rng.normal(0.0, 0.5 if "embeddings" in name else 0.1, shape)
    return value.astype(np.float32)


def google_outputs(batch, checkpoint=None, save_to=None, restore="saver"):
    """google-research/bert's pretraining graph on `batch`: its sequence and
    pooled outputs and the log-probabilities of its two heads. Its weights:
    from `checkpoint` (by a Saver, or by `init_from_checkpoint` with its
    assignment map), or random and non-zero everywhere, saved to
    `save_to`."""
    modeling, run_pretraining, _, _ = google_bert.modules()
    config = _google_config()
    with tf.Graph().as_default(), v1.Session() as session:
        batch = {k: tf.constant(v) for k, v in batch.items()}
        net = modeling.BertModel(config, is_training=False, input_ids=batch["token_ids"],
                                 input_mask=batch["padding_mask"],
                                 token_type_ids=batch["segment_ids"])  # fmt: skip
        mlm = run_pretraining.get_masked_lm_output(
            config, net.get_sequence_output(), net.get_embedding_table(),
            batch["masked_lm_positions"], batch["masked_lm_ids"], batch["masked_lm_weights"],
        )  # fmt: skip
        nsp = run_pretraining.get_next_sentence_output(
            config, net.get_pooled_output(), batch["next_sentence_labels"]
        )
        outputs = {"sequence_output": net.get_sequence_output(),
                   "pooled_output": net.get_pooled_output(), "mlm_log_probs": mlm[2],
                   "nsp_log_probs": nsp[2]}  # fmt: skip
        variables = v1.global_variables()
        if checkpoint is None:
            rng = np.random.default_rng(7)
            for v in variables:
                v.load(_random(rng, v.name, v.shape), session)
            v1.train.Saver().save(session, save_to, write_meta_graph=False)
        elif restore == "saver":
            v1.train.Saver().restore(session, checkpoint)
        else:
            assignment, found = modeling.get_assignment_map_from_checkpoint(variables, checkpoint)
            v1.train.init_from_checkpoint(checkpoint, assignment)
            session.run(v1.global_variables_initializer())
            assert sorted(found) == sorted(n for v in variables for n in (v.name, v.name[:-2]))
        assert len(variables) == len(google_checkpoint.names(CONFIG.num_layers))
        return session.run(outputs)


def our_outputs(net, batch):
    """The same four outputs of the trainer's pretraining model."""
    keys = ("token_ids", "segment_ids", "padding_mask")
    encoded = net.get_layer("bert_backbone")({k: batch[k] for k in keys}, training=False)
    logits = net({k: batch[k] for k in (*keys, "masked_lm_positions")}, training=False)
    mlm = keras.ops.log_softmax(logits["mlm_logits"], axis=-1)
    return {
        "sequence_output": np.asarray(encoded["sequence_output"]),
        "pooled_output": np.asarray(encoded["pooled_output"]),
        "mlm_log_probs": np.asarray(mlm).reshape(-1, CONFIG.vocabulary_size),
        "nsp_log_probs": np.asarray(keras.ops.log_softmax(logits["nsp_logits"], axis=-1)),
    }


def assert_same_function(ours, theirs):
    for name, terms in TERMS.items():
        atol = forward_atol(theirs[name], terms)
        np.testing.assert_allclose(ours[name], theirs[name], rtol=0, atol=atol, err_msg=name)


def _write_google(folder, arrays, vocab=builtin.KEPT_VOCAB, **config):
    """A TF1-format bert_model.ckpt of `arrays` (tf.compat.v1's Saver, as
    google-research saved them), google's bert_config.json (`config`
    changes its fields) and vocab.txt (None: none)."""
    os.makedirs(folder, exist_ok=True)
    with tf.Graph().as_default():
        variables = [v1.Variable(v, name=n) for n, v in arrays.items()]
        saver = v1.train.Saver(variables)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            saver.save(session, os.path.join(folder, "bert_model.ckpt"), write_meta_graph=False)
    (folder / "bert_config.json").write_text(_google_config(**config).to_json_string())
    if vocab:
        shutil.copyfile(vocab, folder / "vocab.txt")
    return str(folder)


@pytest.fixture(scope="module")
def batch(builtin_data_dir):
    from trainers.bert.data import patterns
    from trainers.bert.data.input import pipeline

    pattern, _ = builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    files = patterns.match_files(pattern)
    dataset = pipeline.make_dataset(files, SEQ, PREDICTIONS, batch_size=4, shuffle=False)
    return {k: v.numpy() for k, v in next(iter(dataset)).items()}


@pytest.fixture(scope="module")
def google_source(tmp_path_factory, batch):
    """(folder, outputs): a checkpoint google's graph wrote with random
    weights (biases, LayerNorms and output bias included), its
    bert_config.json and vocab.txt, and that graph's outputs on `batch`."""
    folder = tmp_path_factory.mktemp("uncased_L-2_H-128_A-2")
    outputs = google_outputs(batch, save_to=str(folder / "bert_model.ckpt"))
    (folder / "bert_config.json").write_text(_google_config().to_json_string())
    shutil.copyfile(builtin.KEPT_VOCAB, folder / "vocab.txt")
    return folder, outputs


def test_warm_start_computes_googles_function_and_its_graph_restores_the_export(
    tmp_path, google_source, batch, builtin_data_dir, capsys
):
    folder, theirs = google_source
    run = _train(tmp_path / "run", builtin_data_dir, init_checkpoint=str(folder), export=True)
    output = capsys.readouterr().out
    assert f"warm start from google-research checkpoint {folder}/bert_model.ckpt" in output
    assert "46 of 46 variables loaded; initialised at random: none" in output
    assert run["step"] == 1 and int(run["optimizer"].iterations) == 1  # fresh state
    ours = our_outputs(run["model"], batch)
    assert_same_function(ours, theirs)
    # The bound tells google's tanh GELU in the masked-LM transform from the
    # exact (erf) one, which keras-hub's BertMaskedLM uses.
    dense = run["model"].get_layer("mlm_head")._intermediate_dense
    dense.activation = keras.activations.gelu
    erf = our_outputs(run["model"], batch)["mlm_log_probs"]
    dense.activation = model_lib.gelu_tanh
    atol = forward_atol(theirs["mlm_log_probs"], TERMS["mlm_log_probs"])
    assert np.abs(erf - theirs["mlm_log_probs"]).max() > 4 * atol
    # google's graph restores the export (a Saver, and init_from_checkpoint
    # with google's assignment map): every variable, the same function.
    exported = str(tmp_path / "run" / "google_checkpoint" / "bert_model.ckpt")
    for restore in ("saver", "init_from_checkpoint"):
        assert_same_function(ours, google_outputs(batch, exported, restore=restore))
    # A restart resumes its own checkpoint and leaves the warm start aside.
    again = _train(tmp_path / "run", builtin_data_dir, init_checkpoint=str(folder),
                   phases=[dataclasses.replace(STEP, steps=2)])  # fmt: skip
    assert again["step"] == 2 and "init_checkpoint left aside" in capsys.readouterr().out


JAX_FORWARD = """
import sys
import numpy as np
from trainers.bert.model import bert as model_lib
from trainers.bert.formats import warm_start
from trainers.bert.data.shards import builtin
config = model_lib.preset("tiny", vocabulary_size=4096, dropout=0.0)
net = model_lib.build_pretraining_model(config)
warm = warm_start.read(sys.argv[1], config, builtin.KEPT_VOCAB, True)
for variable in net.weights:
    variable.assign(warm.values[variable.path])
batch = dict(np.load(sys.argv[2]))
from tests.trainers.bert.formats.test_warm_start import our_outputs
np.savez(sys.argv[3], **our_outputs(net, batch))
"""


def test_warm_start_on_the_jax_backend_computes_googles_function(tmp_path, google_source, batch):
    requires("jax", "jax")
    folder, theirs = google_source
    np.savez(tmp_path / "batch.npz", **batch)
    env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    run_process("-c", JAX_FORWARD, str(folder), str(tmp_path / "batch.npz"),
                str(tmp_path / "ours.npz"), env=env)  # fmt: skip
    assert_same_function(dict(np.load(tmp_path / "ours.npz")), theirs)


def test_a_preset_warm_starts_the_encoder_and_keras_hub_computes_the_same(
    tmp_path, google_source, batch, builtin_data_dir, capsys
):
    folder, _ = google_source
    first = _train(tmp_path / "first", builtin_data_dir, init_checkpoint=str(folder), export=True)
    # keras-hub's own BertBackbone, loading the exported encoder, computes
    # what the trainer's encoder computed.
    import keras_hub

    loaded = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "first" / "encoder"))
    keys = ("token_ids", "segment_ids", "padding_mask")
    encoded = loaded({k: batch[k] for k in keys}, training=False)
    ours = our_outputs(first["model"], batch)
    for name in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(
            encoded[name], ours[name], rtol=0, atol=1e-6 * np.abs(ours[name]).max()
        )
    # The preset holds the encoder only: the heads start at random, named.
    capsys.readouterr()
    preset = _train(tmp_path / "second", builtin_data_dir,
                    init_checkpoint=str(tmp_path / "first" / "encoder"))  # fmt: skip
    assert (
        "initialised at random: mlm_head/intermediate_dense/kernel, "
        "mlm_head/intermediate_dense/bias, mlm_head/intermediate_layer_norm/gamma, "
        "mlm_head/intermediate_layer_norm/beta, mlm_head/output_bias, nsp_head/kernel, "
        "nsp_head/bias"
    ) in capsys.readouterr().out
    encoder = preset["model"].get_layer("bert_backbone").token_embedding.embeddings.numpy()
    expected = first["model"].get_layer("bert_backbone").token_embedding.embeddings.numpy()
    np.testing.assert_allclose(encoder, expected, rtol=0, atol=1e-6)


def test_a_partial_head_is_named_tensor_by_tensor(
    tmp_path, google_source, builtin_data_dir, capsys
):
    folder, _ = google_source
    arrays = google_checkpoint.read(str(folder / "bert_model.ckpt"))
    del arrays["cls/predictions/output_bias"]
    partial = _write_google(tmp_path / "partial", arrays)
    run = _train(tmp_path / "run", builtin_data_dir, init_checkpoint=partial)
    assert (
        "45 of 46 variables loaded; initialised at random: "
        "mlm_head/output_bias (cls/predictions/output_bias)"
    ) in capsys.readouterr().out
    (bias,) = [v for v in run["model"].weights if v.path == "mlm_head/output_bias"]
    assert np.abs(bias.numpy()).max() < 1e-10  # its initial zeros, after a step at 1e-12


def _refused(tmp_path, init_checkpoint, match):
    """A run from `init_checkpoint` (built-in data in a folder of its own)
    stops with `match`, and nothing was written: no model_dir, no data."""
    with pytest.raises(ConfigError, match=match):
        _train(tmp_path / "run", str(tmp_path / "data"), init_checkpoint=init_checkpoint)
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "data")


def test_mismatches_stop_before_anything_is_written(tmp_path, google_source):
    folder, _ = google_source
    arrays = google_checkpoint.read(str(folder / "bert_model.ckpt"))
    mini = _write_google(tmp_path / "small", arrays, num_hidden_layers=4, hidden_size=256)
    _refused(tmp_path, mini, "has another shape: num_layers 4 there, 2 in train.model; "
             "hidden_dim 256 there, 128 in train.model")  # fmt: skip
    relu = _write_google(tmp_path / "relu", arrays, hidden_act="relu")
    _refused(tmp_path, relu, "hidden_act 'relu', but this BERT computes hidden_act 'gelu'")
    tokens = open(builtin.KEPT_VOCAB).read().splitlines()
    tokens[100], tokens[101] = tokens[101], tokens[100]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n")
    other = _write_google(tmp_path / "other_vocab", arrays, vocab=tmp_path / "vocab.txt")
    _refused(tmp_path, other, "first difference at line 101")
    (tmp_path / "short.txt").write_text("\n".join(tokens[:-1]) + "\n")
    short = _write_google(tmp_path / "short_vocab", arrays, vocab=tmp_path / "short.txt")
    _refused(tmp_path, short, "vocab.txt holds 4095 tokens, .* says vocab_size 4096")
    _refused(tmp_path, _write_google(tmp_path / "no_vocab", arrays, vocab=None),
             "no vocab.txt beside the checkpoint")  # fmt: skip
    # Each tensor is checked in the file's own layout, before any reshape,
    # and named by its name there: one with as many elements as the right
    # shape, one with fewer, a transposed one.
    query = "bert/encoder/layer_0/attention/self/query/kernel"
    nsp = "cls/seq_relationship/output_weights"
    for name, value, shown in (
        (query, arrays[query].reshape(256, 64), r"\(256, 64\), expected \(128, 128\)"),
        (query, arrays[query][:, :64], r"\(128, 64\), expected \(128, 128\)"),
        (nsp, arrays[nsp].T, r"\(128, 2\), expected \(2, 128\)"),
    ):
        wrong = _write_google(tmp_path / "wrong", {**arrays, name: value})
        _refused(tmp_path, wrong, f"1 tensor\\(s\\) of another shape .*: {name} {shown}")
    del arrays["bert/encoder/layer_1/output/dense/kernel"]
    partial = _write_google(tmp_path / "partial", arrays)
    _refused(tmp_path, partial, "lacks bert/encoder/layer_1/output/dense/kernel")
    _refused(tmp_path, str(tmp_path / "small" / "vocab.txt"), "neither a keras-hub preset folder")


CASED = r"its vocabulary is cased \(e.g. 'Paris'\) but the data was made with do_lower_case=True"
UNCASED = "its vocabulary is uncased but the data was made with do_lower_case=False"


@pytest.mark.parametrize(
    "tokens, do_lower_case, match",
    [(["Paris", "rome"], True, CASED + ": make the data again with --do_lower_case=False"),
     (["paris", "rome"], False, UNCASED)],
)  # fmt: skip
def test_a_vocabulary_of_other_casing_than_the_data_is_refused(
    tmp_path, tokens, do_lower_case, match
):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *tokens]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(tokens) + "\n")
    with pytest.raises(ConfigError, match=match):
        warm_start._check_vocabulary(tokens, str(vocab_file), do_lower_case, "the checkpoint")
    # The casing the data was made with: nothing to say.
    assert warm_start._check_vocabulary(tokens, str(vocab_file), not do_lower_case, "x") == []
