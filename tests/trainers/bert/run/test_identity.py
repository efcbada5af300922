"""A restart on a model_dir must be the same run, or stop before writing."""

import dataclasses
import functools
import json
import os
import shutil

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tests.trainers.bert import runs
from trainers.bert.errors import ConfigError
from trainers.bert.run import identity
from trainers.bert.run.checkpoint import Checkpoint

PHASES = [runs.phase(), runs.long_phase()]
# Dropout on, as the tiny preset has it.
_train = functools.partial(runs.train, phases=PHASES, model_overrides=None)


def _log(model_dir):
    with open(model_dir / "log.jsonl") as f:
        return [json.loads(line) for line in f]


def _files(folder):
    """{relative path: bytes} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, builtin_data_dir):
    model_dir = tmp_path_factory.mktemp("finished")
    _train(model_dir, builtin_data_dir, flags_text="--model_dir=finished\n")
    return model_dir


def test_another_model_on_a_finished_run_stops_and_writes_nothing(finished_run, builtin_data_dir):
    before = _files(finished_run)
    assert {"run.json", "flags.txt", "operative_config.gin", "log.jsonl"} <= set(before)
    assert any(name.startswith("encoder/") for name in before)
    with pytest.raises(ConfigError) as error:
        _train(finished_run, builtin_data_dir, model="mini", flags_text="--other\n")
    message = str(error.value)
    assert "holds a run with another configuration" in message
    assert "model.num_layers: 2 in the run, 4 now" in message
    assert "model.hidden_dim: 128 in the run, 256 now" in message
    assert "Nothing was written" in message and "new model_dir" in message
    assert _files(finished_run) == before


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"precision": "mixed_bfloat16"}, "precision: 'float32' in the run, 'mixed_bfloat16' now"),
        ({"optimizer": tf.keras.optimizers.AdamW}, "optimizer.class: 'lamb_tf.lamb.LAMB'"),
        (
            {"phases": [dataclasses.replace(PHASES[0], global_batch_size=4), PHASES[1]]},
            "phase 1 global_batch_size: 8 in the run, 4 now",
        ),
        ({"phases": [PHASES[0]]}, "phases: the run is in phase 2, this configuration has 1"),
    ],
)
def test_a_change_to_the_saved_state_is_refused(finished_run, builtin_data_dir, change, expected):
    before = _files(finished_run)
    with pytest.raises(ConfigError, match="another configuration") as error:
        _train(finished_run, builtin_data_dir, **change)
    assert expected in str(error.value)
    assert _files(finished_run) == before


def test_a_finished_run_restarted_trains_nothing_and_exports_its_encoder_again(
    finished_run, builtin_data_dir
):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(finished_run / "checkpoints")))
    trained_steps = len([r for r in _log(finished_run) if r["kind"] == "train"])
    shutil.rmtree(finished_run / "encoder")
    result = _train(finished_run, builtin_data_dir, eval_every=1)  # a safe change
    assert result["step"] == 6
    assert len([r for r in _log(finished_run) if r["kind"] == "train"]) == trained_steps
    embedding = result["model"].get_layer("bert_backbone").token_embedding.embeddings.numpy()
    # The trained embedding (saved among the optimizer's tracked variables;
    # its moments have other values).
    saved = [
        reader.get_tensor(name)
        for name, shape in reader.get_variable_to_shape_map().items()
        if list(shape) == [4096, 128]
    ]
    assert any(np.array_equal(embedding, s) for s in saved)
    # The trained encoder is exported again.
    exported = keras_hub.models.BertBackbone.from_preset(str(finished_run / "encoder"))
    np.testing.assert_array_equal(exported.token_embedding.embeddings.numpy(), embedding)


def test_a_run_of_the_other_engine_is_refused(finished_run, tmp_path, builtin_data_dir):
    model_dir = tmp_path / "jax_run"
    shutil.copytree(finished_run, model_dir)
    saved = identity.read(str(model_dir))
    identity.write(str(model_dir), dict(saved, engine="jax"))  # as the JAX engine writes it
    before = _files(model_dir)
    with pytest.raises(ConfigError, match="another configuration") as error:
        _train(model_dir, builtin_data_dir)
    assert "engine: 'jax' in the run, 'tf' now" in str(error.value)
    assert _files(model_dir) == before


def test_a_run_without_run_json_is_checked_by_restoring(finished_run, tmp_path, builtin_data_dir):
    model_dir = tmp_path / "older"
    shutil.copytree(finished_run, model_dir)
    os.remove(model_dir / identity.RUN)  # as saved before run.json existed
    before = _files(model_dir)
    with pytest.raises(ConfigError, match="does not fit this model and optimizer"):
        _train(model_dir, builtin_data_dir, model="mini")
    assert _files(model_dir) == before


CURRENT = {
    "model": {"num_layers": 2},
    "optimizer": {"class": "LAMB", "state_variables": 10},
    "vocabulary_sha256": "abc",
    "precision": "float32",
    "phases": [
        {"seq_length": 128, "global_batch_size": 64, "max_predictions": 20, "steps": 10},
        {"seq_length": 512, "global_batch_size": 32, "max_predictions": 80, "steps": 5},
    ],
}


def _with_phases(*phases):
    return dict(CURRENT, phases=list(phases))


@pytest.mark.parametrize(
    "phases, checkpoint, expected",
    [
        # Safe: steps of the running phase (not below those done), later phases.
        ((dict(CURRENT["phases"][0], steps=20),), Checkpoint("c", 5, 0), []),
        (
            (CURRENT["phases"][0], dict(CURRENT["phases"][1], global_batch_size=16)),
            Checkpoint("c", 5, 0),
            [],
        ),
        ((*CURRENT["phases"], CURRENT["phases"][1]), Checkpoint("c", 12, 1), []),
        # Not: shapes of a started phase, steps of a finished one, fewer
        # steps than done.
        (
            (dict(CURRENT["phases"][0], seq_length=64), CURRENT["phases"][1]),
            Checkpoint("c", 5, 0),
            ["phase 1 seq_length: 128 in the run, 64 now"],
        ),
        (
            (dict(CURRENT["phases"][0], steps=12), CURRENT["phases"][1]),
            Checkpoint("c", 12, 1),
            ["phase 1 steps: 10 in the run, 12 now"],
        ),
        (
            (dict(CURRENT["phases"][0], steps=4), CURRENT["phases"][1]),
            Checkpoint("c", 6, 0),
            ["phase 1 steps: 6 done in the run, 4 now"],
        ),
    ],
)
def test_what_may_change_on_a_restart(phases, checkpoint, expected):
    assert identity.differences(CURRENT, _with_phases(*phases), checkpoint) == expected


def test_fixed_parts_are_compared_without_a_checkpoint():
    current = dict(CURRENT, model={"num_layers": 4}, vocabulary_sha256="def")
    assert identity.differences(CURRENT, current, None) == [
        "model.num_layers: 2 in the run, 4 now",
        "vocabulary_sha256: 'abc' in the run, 'def' now",
    ]
