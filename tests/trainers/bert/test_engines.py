"""Choosing the engine: each mismatch of engine, Keras backend, devices and
multi-process settings stops before any compute, in one line naming the
setting, with nothing written; and the two engines train alike."""

import json
import os

import numpy as np
import pytest

from tests.scripts import run_process
from trainers.bert import engines
from trainers.bert.errors import ConfigError

TINY = "--gin_file=gin_configs/tiny_cpu.gin"
JAX = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
TWO_DEVICES = {**JAX, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def test_the_default_engine_is_the_backends_and_a_mismatch_is_refused():
    assert engines.of_backend() == "tf"  # the tests run Keras on TensorFlow
    engines.check("tf")
    with pytest.raises(ConfigError, match="set KERAS_BACKEND=jax"):
        engines.check("jax")
    with pytest.raises(ConfigError, match="choose one of tf, jax"):
        engines.check("torch")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--engine=jax"], {}, "--engine=jax runs on Keras' jax backend, and Keras runs on"),
        (["--engine=tf"], JAX, "--engine=tf runs on Keras' tensorflow backend"),
        (["--num_processes=2"], JAX, "need --coordinator_address"),
        (["--tpu=local"], JAX, "--engine=jax runs on every JAX device"),
        (
            ["--gin_param=phase1/Phase.global_batch_size = 127"],
            TWO_DEVICES,
            "global_batch_size=127 is not divisible by the 2 replicas",
        ),
    ],
)
def test_engine_settings_that_cannot_run_stop_in_one_line_with_status_2(
    tmp_path, args, env, message
):
    stderr = run_process(
        "-m", "trainers.bert.main", TINY, *args, f"--model_dir={tmp_path}", expect_status=2, env=env
    )
    assert stderr.startswith("bert-pretrain: error: ") and message in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert os.listdir(tmp_path) == []


# The tiny config for 30 + 4 steps, as shipped otherwise (dropout on).
CURVE_BINDINGS = [
    "phase1/Phase.steps = 30",
    "phase1/Phase.warmup_steps = 10",
    "phase2/Phase.steps = 4",
    "phase2/Phase.warmup_steps = 2",
    "train.steps_per_loop = 10",
    "train.checkpoint_every = None",
    "train.eval_steps = 2",
    "train.tensorboard = False",
]


def _losses(model_dir, kind):
    with open(os.path.join(model_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [r["loss"] for r in records if r["kind"] == kind]


@pytest.mark.slow
def test_the_jax_and_tensorflow_engines_follow_the_same_loss_curve(tmp_path, builtin_data_dir):
    pytest.importorskip("orbax.checkpoint", reason="the JAX engine needs the [jax] extra")
    from trainers.bert.jax_engine.checkpoints import Checkpointer, saved_state

    runs = {}
    for engine, env in (("jax", JAX), ("tf", {})):
        model_dir = tmp_path / engine
        bindings = [*CURVE_BINDINGS, f'train.data_dir = "{builtin_data_dir}"']
        bindings.append(f"train.export = {engine == 'jax'}")
        run_process(
            "-m",
            "trainers.bert.main",
            f"--engine={engine}",
            TINY,
            *[f"--gin_param={b}" for b in bindings],
            f"--model_dir={model_dir}",
            env=env,
        )
        runs[engine] = {kind: _losses(model_dir, kind) for kind in ("train", "eval")}
    jax_run, tf_run = runs["jax"], runs["tf"]
    assert len(jax_run["train"]) == len(tf_run["train"]) == 4
    # The runs start from other random weights (each backend draws its own)
    # with their own dropout masks: the curves agree to 1.5% at every host
    # loop while the loss falls by more than 10% (over 8.9 to 7.9).
    assert jax_run["train"][-1] < 0.9 * jax_run["train"][0]
    for kind in ("train", "eval"):
        np.testing.assert_allclose(jax_run[kind], tf_run[kind], rtol=0.015)

    # The JAX run's encoder is a keras-hub preset that Keras on TensorFlow
    # loads, holding the run's final weights.
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "jax" / "encoder"))
    embedding = backbone.token_embedding.embeddings.numpy()
    final = saved_state(Checkpointer(str(tmp_path / "jax")).latest().path)
    (saved,) = [v for k, v in final.items() if "trainable" in k and v.shape == embedding.shape]
    np.testing.assert_array_equal(embedding, saved)

    # A warm start on the JAX engine from the run's export in
    # google-research's format: at a learning rate of 1e-12, two steps
    # leave the loaded weights as they were.
    warm = tmp_path / "jax_warm"
    bindings = [*CURVE_BINDINGS, f'train.data_dir = "{builtin_data_dir}"', "train.export = True"]
    bindings += [
        f"phase{p}/Phase.{k} = {v}"
        for p in (1, 2)
        for k, v in (("steps", 1), ("warmup_steps", 0), ("peak_learning_rate", 1e-12))
    ]
    bindings.append(f'train.init_checkpoint = "{tmp_path / "jax" / "google_checkpoint"}"')
    stdout = run_process(
        "-m",
        "trainers.bert.main",
        "--engine=jax",
        TINY,
        *[f"--gin_param={b}" for b in bindings],
        f"--model_dir={warm}",
        env=JAX,
    )
    assert "warm start from google-research checkpoint" in stdout
    assert "initialised at random: none" in stdout
    loaded = keras_hub.models.BertBackbone.from_preset(str(warm / "encoder"))
    np.testing.assert_allclose(loaded.token_embedding.embeddings.numpy(), embedding, atol=1e-6)
