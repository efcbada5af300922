"""The trainer end to end on tiny models: both phases in one job, the
learning rate re-warming at the boundary, moments carried over or reset,
exact resume mid-phase, the exported encoder, errors before training."""

import dataclasses
import functools
import json
import os
import shutil

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tests import float32
from tests.trainers.bert import runs
from trainers import stack
from trainers.bert import train
from trainers.bert.data.shards import builtin
from trainers.bert.engines.tf_engine import checkpoints
from trainers.bert.errors import ConfigError, DataError
from trainers.bert.formats import export
from trainers.bert.model import bert as model

# Every checkpoint kept (the resumes start from each), two evaluation
# batches, TensorBoard's summaries written (`full_run` looks for them).
_train = functools.partial(
    runs.train,
    keep_checkpoints=10,
    eval_steps=2,
    tensorboard=True,
    clip_norm=None,  # clipping would hide a gradient of the wrong size
)


def _weights(result):
    return [v.numpy() for v in result["model"].weights]


def _log(model_dir):
    with open(os.path.join(model_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, builtin_data_dir):
    model_dir = tmp_path_factory.mktemp("full")
    return model_dir, _train(model_dir, builtin_data_dir)


def test_both_phases_run_and_the_learning_rate_warms_up_again(full_run):
    model_dir, result = full_run
    assert result["step"] == 10
    assert int(result["optimizer"].iterations.numpy()) == 10  # moments carried over
    train_log = [r for r in _log(model_dir) if r["kind"] == "train"]
    rates = {r["step"]: r["learning_rate"] for r in train_log}
    # Steps 1-2 warm up phase 1; step 7 is the first of phase 2, warming again.
    assert rates[2] == pytest.approx(1e-2 * 1 / 2)
    assert rates[6] < rates[4] < 1e-2
    assert rates[8] == pytest.approx(5e-3 * 1 / 2)
    assert [r["phase"] for r in train_log] == [1, 1, 1, 2, 2]
    # The gradient noise scale: measured in phase 1 (two micro-batches per
    # update), not in phase 2 (one).
    for record in train_log[:3]:
        assert record["gradient_variance"] > 0 and "noise_scale" in record
    assert not any("noise_scale" in r for r in train_log[3:])
    evals = [r for r in _log(model_dir) if r["kind"] == "eval"]
    assert [(r["phase"], r["step"]) for r in evals] == [(1, 6), (2, 10)]
    for record in train_log:
        assert np.isfinite(record["loss"]) and record["tokens_per_second"] > 0
        assert 0 < record["trust_ratio_min"] <= record["trust_ratio_max"]
        assert 0 < record["mfu"] < 1
    # The range covers the adapted variables only (excluded ones report 1).
    optimizer = result["optimizer"]
    adapted = [
        ratio
        for path, ratio in optimizer.trust_ratios.items()
        if optimizer.variable_rules[path]["layer_adaptation"]
    ]
    assert len(adapted) < len(optimizer.trust_ratios)
    assert train_log[-1]["trust_ratio_min"] == pytest.approx(min(adapted))
    assert train_log[-1]["trust_ratio_max"] == pytest.approx(max(adapted))
    assert os.path.exists(os.path.join(model_dir, "operative_config.gin"))
    assert os.listdir(os.path.join(model_dir, "tensorboard", "train"))


def test_reset_switch_restarts_the_optimizer_at_phase_two(tmp_path, builtin_data_dir, full_run):
    result = _train(tmp_path, builtin_data_dir, runs.two_phases(reset_optimizer=True))
    assert int(result["optimizer"].iterations.numpy()) == 4  # bias correction from t=1
    carried = _weights(full_run[1])
    assert max(float(np.abs(a - b).max()) for a, b in zip(_weights(result), carried)) > 1e-4

    # The optimizer restarts; the schedule does not.
    def rates(model_dir):
        return [(r["step"], r["learning_rate"]) for r in _log(model_dir) if r["kind"] == "train"]

    assert rates(tmp_path) == rates(full_run[0])


@pytest.mark.parametrize("resume_step", [4, 6, 8])  # mid phase 1, boundary, mid phase 2
def test_resume_gives_the_weights_of_an_uninterrupted_run(
    tmp_path, builtin_data_dir, full_run, resume_step
):
    source, uninterrupted = full_run
    # A job that stopped after `resume_step`: only the checkpoints up to it.
    target = tmp_path / "stopped"
    shutil.copytree(source / checkpoints.CHECKPOINTS, target / checkpoints.CHECKPOINTS)
    folder = target / checkpoints.CHECKPOINTS
    kept = [str(folder / f"ckpt-{s}") for s in range(2, resume_step + 1, 2)]
    tf.compat.v1.train.update_checkpoint_state(
        str(folder), kept[-1], all_model_checkpoint_paths=kept
    )
    for later in range(resume_step + 2, 11, 2):
        for path in folder.glob(f"ckpt-{later}.*"):
            path.unlink()
    resumed = _train(target, builtin_data_dir)
    assert resumed["step"] == 10
    for a, b in zip(_weights(resumed), _weights(uninterrupted)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    first = [r for r in _log(target) if r["kind"] == "train"][0]
    assert first["step"] == resume_step + 2


def test_exported_encoder_loads_in_keras_hub(full_run):
    model_dir, result = full_run
    path = result["encoder"]
    backbone = keras_hub.models.BertBackbone.from_preset(path)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
    pieces = [int(i) for i in np.asarray(tokenizer("the built in help text")).ravel()]
    assert pieces and tokenizer.token_to_id("[UNK]") not in pieces
    token_ids = tf.constant([pieces + [0] * (16 - len(pieces))])
    outputs = backbone(
        {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": tf.cast(token_ids > 0, tf.int32),
        }
    )
    trained = result["model"].get_layer("bert_backbone")
    expected = trained(
        {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": tf.cast(token_ids > 0, tf.int32),
        }
    )
    assert outputs["pooled_output"].shape == (1, 128)
    np.testing.assert_allclose(outputs["sequence_output"], expected["sequence_output"], atol=1e-5)


def _to_ram(local_folder, name):
    remote = f"ram://{name}"
    export.copy_tree(local_folder, remote)
    return remote


def test_object_store_paths_for_data_vocabulary_and_model_dir(builtin_data_dir):
    # TensorFlow's in-memory filesystem stands in for gs://: nothing may go
    # through local file APIs (they would write a local folder named "ram:").
    phases = runs.two_phases(steps=2, warmup_steps=1)
    for index, phase in enumerate(phases):
        train_files, eval_files = builtin.shards(
            builtin_data_dir, phase.seq_length, phase.max_predictions
        )
        folder = _to_ram(os.path.dirname(os.path.dirname(train_files)), f"data/{index}")
        phases[index] = dataclasses.replace(
            phase,
            train_files=f"{folder}/train/*.tfrecord",
            eval_files=f"{folder}/heldout/*.tfrecord",
        )
    assert tf.io.gfile.exists("ram://data/0/train/manifest.json")
    vocab_file = "ram://data/vocab.txt"
    tf.io.gfile.copy(builtin.vocab_file(builtin_data_dir), vocab_file, overwrite=True)
    model_dir = "ram://bert_run"
    result = _train(model_dir, None, phases, steps_per_loop=1, vocab_file=vocab_file)
    assert result["step"] == 6
    names = {name.rstrip("/") for name in tf.io.gfile.listdir(model_dir)}
    assert {"log.jsonl", "operative_config.gin", "checkpoints", "encoder"} <= names
    with tf.io.gfile.GFile(f"{model_dir}/log.jsonl") as f:
        assert len([line for line in f.read().splitlines() if '"train"' in line]) == 6
    encoder = set(tf.io.gfile.listdir(f"{model_dir}/encoder"))
    assert {"config.json", "model.weights.h5", "tokenizer.json"} <= encoder
    assert not os.path.exists("ram:")


def test_object_store_shard_is_checked_against_its_manifest(builtin_data_dir):
    train_files, _ = builtin.shards(builtin_data_dir, 32, 5)
    folder = _to_ram(os.path.dirname(train_files), "truncated")
    shard = sorted(tf.io.gfile.glob(f"{folder}/*.tfrecord"))[0]
    with tf.io.gfile.GFile(shard, "rb") as f:
        content = f.read()
    with tf.io.gfile.GFile(shard, "wb") as f:
        f.write(content[:-10])
    with pytest.raises(DataError, match="truncated"):
        _train("ram://truncated_run", None, runs.two_phases(train_files=f"{folder}/*.tfrecord")[:1])


def test_built_in_data_with_an_object_store_model_dir_needs_a_local_data_dir():
    with pytest.raises(ConfigError, match="set train.data_dir to a local folder"):
        train.train("ram://builtin_run", phases=runs.two_phases())


def _targets(pattern):
    """(masked-LM ids, weights) of every record of `pattern`, read with
    TensorFlow's Example parser, not the trainer's pipeline."""
    ids, weights = [], []
    for path in sorted(tf.io.gfile.glob(pattern)):
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            features = tf.train.Example.FromString(record).features.feature
            ids.extend(features["masked_lm_ids"].int64_list.value)
            weights.extend(features["masked_lm_weights"].float_list.value)
    weights = np.asarray(weights)
    return np.asarray(ids)[weights > 0], weights[weights > 0]


def _unigram_baseline(train_pattern, heldout_pattern, vocabulary_size):
    """Held-out masked-LM accuracy and loss of the best context-free model:
    always the training targets' most frequent token, and their frequencies
    (add-one smoothed) as its probabilities."""
    train_ids, _ = _targets(train_pattern)
    heldout_ids, weights = _targets(heldout_pattern)
    counts = np.bincount(train_ids, minlength=vocabulary_size) + 1.0
    log_p = np.log(counts / counts.sum())
    accuracy = np.sum(weights * (heldout_ids == counts.argmax())) / weights.sum()
    return accuracy, -np.sum(weights * log_p[heldout_ids]) / weights.sum()


def test_training_beats_the_token_frequencies(tmp_path, builtin_data_dir):
    """A model that learned only which tokens are frequent reaches the
    unigram baseline (60 steps of this run do: 0.065 and 6.15 against
    0.065 and 6.02); one that uses the context goes clearly beyond it."""
    phases = [runs.phase(global_batch_size=32, steps=500, warmup_steps=80, peak_learning_rate=2e-2)]
    result = _train(
        tmp_path,
        builtin_data_dir,
        phases,
        steps_per_loop=100,
        checkpoint_every=None,
        eval_steps=20,
        tensorboard=False,
        export=False,
    )
    train_pattern, heldout_pattern = builtin.shards(builtin_data_dir, 32, 5)
    accuracy, loss = _unigram_baseline(train_pattern, heldout_pattern, builtin.VOCAB_SIZE)
    assert 0.03 < accuracy < 0.1 and 5.5 < loss < np.log(builtin.VOCAB_SIZE)
    assert result["eval"]["mlm_accuracy"] > 1.5 * accuracy
    assert result["eval"]["mlm_loss"] < loss - 0.25


def test_the_run_says_when_it_trains_without_xla(tmp_path, builtin_data_dir, capsys):
    # TensorFlow's TPU build cannot XLA-compile for the CPU (CI's TPU stack).
    _train(tmp_path, builtin_data_dir, runs.two_phases(steps=2, warmup_steps=1)[:1], export=False)
    said = "cannot XLA-compile for the CPU: the steps run without XLA" in capsys.readouterr().out
    assert said == stack.is_tpu_build()


def test_target_accuracy_stops_training(tmp_path, builtin_data_dir):
    result = _train(tmp_path, builtin_data_dir, eval_every=2, target_mlm_accuracy=0.0)
    assert result["stopped_early"] and result["step"] == 2


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"precision": "float8"}, ConfigError, "train.precision='float8'"),
        ({"steps_per_loop": 0}, ConfigError, "train.steps_per_loop must be an integer >= 1"),
        ({"model": "huge"}, ConfigError, "train.model='huge' is neither a preset"),
        ({"model_overrides": {"layers": 3}}, ConfigError, "unknown fields ['layers']"),
        ({"phases": runs.two_phases(global_batch_size=7)}, ConfigError, "global_batch_size=7"),
        ({"phases": runs.two_phases(micro_batch_size=3)}, ConfigError, "micro_batch_size=3"),
        (
            {"phases": runs.two_phases(train_files="/nonexistent/*.tfrecord")},
            DataError,
            "/nonexistent",
        ),
        # Non-finite, out of range or of the wrong type, as gin may pass them.
        ({"clip_norm": float("nan")}, ConfigError, "train.clip_norm must be a finite number"),
        ({"clip_norm": 0.0}, ConfigError, "train.clip_norm must be a finite number > 0.0"),
        ({"keep_checkpoints": 0}, ConfigError, "train.keep_checkpoints must be an integer >= 1"),
        ({"seed": -1}, ConfigError, "train.seed must be an integer >= 0"),
        ({"peak_flops": float("inf")}, ConfigError, "train.peak_flops must be a finite"),
        ({"tensorboard": "yes"}, ConfigError, "train.tensorboard must be True or False"),
        ({"target_mlm_accuracy": 2}, ConfigError, "train.target_mlm_accuracy must be"),
        ({"eval_every": 2.5}, ConfigError, "train.eval_every must be an integer >= 1 (or None)"),
        ({"input_pipelines": 0}, ConfigError, "train.input_pipelines must be an integer >= 1"),
        ({"model_overrides": {"dropout": float("nan")}}, ConfigError, "dropout must be a finite"),
        ({"model_overrides": {"num_layers": 0}}, ConfigError, "num_layers must be an integer"),
        (
            {"phases": runs.two_phases(peak_learning_rate=float("nan"))},
            ConfigError,
            "phase 1 (Phase #0): `peak_learning_rate` must be",
        ),
        (
            {"phases": runs.two_phases(steps=float("nan"))},
            ConfigError,
            "phase 1 (Phase #0): steps must be an integer >= 1, got nan",
        ),
        (
            {"phases": runs.two_phases(reset_optimizer=1)},
            ConfigError,
            "reset_optimizer must be True",
        ),
        ({"phases": ["phase1"]}, ConfigError, "train.phases[0] is not a Phase: 'phase1'"),
    ],
)
def test_misconfiguration_fails_before_training(tmp_path, builtin_data_dir, kwargs, error, message):
    with pytest.raises(error) as raised:
        _train(tmp_path, builtin_data_dir, **kwargs)
    assert message in str(raised.value)
    assert not (tmp_path / checkpoints.CHECKPOINTS).exists()


def test_data_of_the_wrong_length_is_named(tmp_path, builtin_data_dir):
    pattern, _ = builtin.shards(builtin_data_dir, 32, 5)
    with pytest.raises(DataError, match="has length 32, expected 64"):
        _train(tmp_path, builtin_data_dir, runs.two_phases(train_files=pattern, seq_length=64))


def test_dynamic_masking_draws_new_targets(tmp_path, builtin_data_dir, full_run):
    result = _train(tmp_path, builtin_data_dir, dynamic_masking=True)
    assert result["step"] == 10 and np.isfinite(result["train"]["loss"])
    difference = max(
        float(np.abs(a - b).max()) for a, b in zip(_weights(result), _weights(full_run[1]))
    )
    assert difference > 1e-4  # other targets, another trajectory


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_runs(tmp_path, builtin_data_dir, precision):
    result = _train(tmp_path, builtin_data_dir, [runs.phase()], precision=precision)
    assert result["step"] == 4 and np.isfinite(result["train"]["loss"])
    backbone = result["model"].get_layer("bert_backbone")
    assert backbone.dtype_policy.name == precision
    assert all(v.dtype == "float32" for v in result["model"].trainable_variables)


def _initial_weights(data_dir, seed=0):
    """The weights `train` starts from (same seed, same construction)."""
    keras.utils.set_random_seed(seed)
    config = model.bert_config("tiny", runs.NO_DROPOUT, builtin.vocab_file(data_dir))
    return [v.numpy() for v in model.build_pretraining_model(config).weights]


def test_two_logical_devices_give_the_one_device_run(
    tmp_path, builtin_data_dir, full_run, two_cpus
):
    result = _train(tmp_path, builtin_data_dir, strategy=two_cpus)
    assert result["step"] == 10
    # Reduction-order rounding only (tests/float32.py), weights and moments.
    initial = _initial_weights(builtin_data_dir)
    float32.assert_same_weights(initial, _weights(full_run[1]), _weights(result))
    float32.assert_same_slots(
        float32.optimizer_slots(full_run[1]["optimizer"]),
        float32.optimizer_slots(result["optimizer"]),
    )
