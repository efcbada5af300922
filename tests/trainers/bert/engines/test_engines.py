"""Choosing the engine: each mismatch of engine, Keras backend, devices and
multi-process settings stops before any compute, in one line naming the
setting, with nothing written; and the two engines train alike."""

import json
import os

import numpy as np
import pytest

from tests import float32
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
            ['--gin_param=train.precision = "mixed_float16"'],
            JAX,
            'train.precision="mixed_float16" is not supported by the JAX engine',
        ),
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


# One run of both phases, each engine in its own process: a warm start from
# the same google-research checkpoint, no dropout, no clipping.
SAME_START = """
import sys
import numpy as np
from tests.trainers.bert import runs

model_dir, data_dir, init_checkpoint, out = sys.argv[1:5]
phases = [runs.phase(warmup_steps=1, micro_batch_size=4), runs.long_phase(warmup_steps=1)]
result = runs.train(model_dir, data_dir, phases, clip_norm=None, checkpoint_every=None,
                    init_checkpoint=init_checkpoint)
values = {"weights/" + v.path: np.asarray(v) for v in result["model"].weights}
for v in result["optimizer"].variables:
    values["slots/" + v.path.split("/", 1)[1]] = np.asarray(v)
np.savez(out, **values)
"""


def _logged(model_dir, kind):
    """The losses and learning rates of a run's log."""
    with open(os.path.join(model_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [[r["loss"], r.get("learning_rate", 0.0)] for r in records if r["kind"] == kind]


def _start_checkpoint(folder, data_dir):
    """A google-research checkpoint of a freshly drawn tiny model, and its
    weights by our names as the warm start reads them."""
    from trainers.bert.data.shards import builtin
    from trainers.bert.formats import google_checkpoint, warm_start
    from trainers.bert.model import bert as model

    builtin.shards(data_dir, 32, 5)  # the built-in data and its vocabulary
    vocab_file = builtin.vocab_file(data_dir)
    config = model.bert_config("tiny", {"dropout": 0.0}, vocab_file)
    path = google_checkpoint.write(
        model.build_pretraining_model(config), config, vocab_file, folder
    )
    return path, warm_start.read(path, config, vocab_file, builtin.DO_LOWER_CASE).values


@pytest.mark.slow
def test_the_jax_and_tensorflow_engines_train_alike_from_one_start(tmp_path, builtin_data_dir):
    from tests.conftest import requires

    requires("orbax.checkpoint", "jax")
    init_checkpoint, initial = _start_checkpoint(str(tmp_path / "start"), builtin_data_dir)
    runs, stdout = {}, {}
    for engine, env in (("jax", JAX), ("tf", {})):
        out = tmp_path / f"{engine}.npz"
        args = [tmp_path / engine, builtin_data_dir, init_checkpoint, out]
        stdout[engine] = run_process("-c", SAME_START, *map(str, args), env=env)
        with np.load(out) as saved:
            runs[engine] = dict(saved)
    assert "initialised at random: none" in stdout["jax"], stdout["jax"][-2000:]

    def part(run, prefix):
        return {k[len(prefix) :]: v for k, v in run.items() if k.startswith(prefix)}

    jax_weights, tf_weights = part(runs["jax"], "weights/"), part(runs["tf"], "weights/")
    assert jax_weights.keys() == tf_weights.keys() == initial.keys()
    # Both engines' arithmetic in another order: float32 rounding only
    # (tests/float32.py), weights and moments, which a doubled gradient,
    # a missed weight decay or exclusion, or another batch would not pass.
    float32.assert_same_weights(initial, tf_weights, jax_weights)
    jax_slots, tf_slots = part(runs["jax"], "slots/"), part(runs["tf"], "slots/")
    for slots in (jax_slots, tf_slots):
        slots.pop("learning_rate", None)  # the schedule's: the logs compare it
    float32.assert_same_slots(tf_slots, jax_slots)
    assert int(tf_slots["iteration"]) == 6
    for kind in ("train", "eval"):
        np.testing.assert_allclose(
            _logged(tmp_path / "jax", kind), _logged(tmp_path / "tf", kind), rtol=float32.SUMS_RTOL
        )

    # The JAX run's encoder is a keras-hub preset that Keras on TensorFlow
    # loads, holding the run's final weights.
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "jax" / "encoder"))
    embedding = backbone.token_embedding.embeddings.numpy()
    (name,) = [k for k in jax_weights if k.endswith("token_embedding/embeddings")]
    np.testing.assert_array_equal(embedding, jax_weights[name])
