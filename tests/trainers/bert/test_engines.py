"""Choosing the engine: each mismatch of engine, Keras backend, devices and
multi-process settings stops before any compute, in one line naming the
setting, with nothing written."""

import os

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
        (["--coordinator_address=127.0.0.1:1"], {}, "--coordinator_address: for --engine=jax"),
        (["--num_processes=2"], JAX, "need --coordinator_address"),
        (["--coordinator_address=127.0.0.1:1"], JAX, "needs --num_processes and --process_id"),
        (
            ["--coordinator_address=auto", "--process_id=1"],
            JAX,
            "finds --num_processes and --process_id itself",
        ),
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
