"""The JAX engine on CPU host devices, each run a trainer process (Keras'
backend is fixed when it is first imported): two devices train as one
device accumulating two micro-batches, two processes joined by
`jax.distributed` train as two devices, the compiled step reduces across
devices once per update, and the engine follows the TensorFlow engine's
loss curve."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.scripts import ROOT, free_ports, run_process

pytest.importorskip("jax", reason="the JAX engine needs the [jax] extra")
pytest.importorskip("orbax.checkpoint", reason="the JAX engine needs the [jax] extra")

from trainers.bert.jax_engine.checkpoints import Checkpointer, saved_state  # noqa: E402

pytestmark = pytest.mark.slow

JAX = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
TWO_DEVICES = {**JAX, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
# The tiny config, shortened; both phases; no dropout (its masks depend on
# how the batch is split); two input pipelines, so the global batches are
# the same however devices and processes are arranged.
BINDINGS = [
    "phase1/Phase.steps = 6",
    "phase1/Phase.warmup_steps = 2",
    "phase2/Phase.steps = 2",
    "phase2/Phase.warmup_steps = 1",
    "train.steps_per_loop = 3",
    "train.checkpoint_every = None",
    "train.eval_steps = 1",
    "train.input_pipelines = 2",
    "train.model_overrides = {'dropout': 0.0}",
    "train.export = False",
    "train.tensorboard = False",
]
# Micro-batches of half the per-device batch of two devices.
ACCUMULATING = ["phase1/Phase.micro_batch_size = 64", "phase2/Phase.micro_batch_size = 32"]


def _command(model_dir, data_dir, bindings, *flags):
    gin = [f"--gin_param={b}" for b in [*bindings, f'train.data_dir = "{data_dir}"']]
    return [
        "-m",
        "trainers.bert.main",
        "--engine=jax",
        "--gin_file=gin_configs/tiny_cpu.gin",
        *gin,
        f"--model_dir={model_dir}",
        *flags,
    ]


def _final_state(model_dir):
    return saved_state(Checkpointer(str(model_dir)).latest().path)


def _two_processes(model_dir, data_dir):
    address = f"127.0.0.1:{free_ports(1)[0]}"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                *_command(
                    model_dir,
                    data_dir,
                    BINDINGS,
                    f"--coordinator_address={address}",
                    "--num_processes=2",
                    f"--process_id={index}",
                ),
            ],
            cwd=ROOT,
            env=dict(os.environ, **JAX),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in (1, 0)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return outputs


@pytest.fixture(scope="module")
def states(tmp_path_factory, builtin_data_dir):
    root = tmp_path_factory.mktemp("jax_runs")
    found = {}
    run_process(
        *_command(root / "accumulating", builtin_data_dir, BINDINGS + ACCUMULATING), env=JAX
    )
    found["accumulating"] = _final_state(root / "accumulating")
    output = run_process(
        *_command(root / "two_devices", builtin_data_dir, BINDINGS), env=TWO_DEVICES
    )
    assert "2 CPU device(s) in 1 process(es) (JAX)" in output
    found["two_devices"] = _final_state(root / "two_devices")
    outputs = _two_processes(root / "two_processes", builtin_data_dir)
    assert all("2 CPU device(s) in 2 process(es) (JAX)" in output for output in outputs)
    found["two_processes"] = _final_state(root / "two_processes")
    return found


def _largest_difference(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k].astype(float) - b[k].astype(float)))) for k in a)


def test_two_devices_train_as_one_device_accumulating_two_micro_batches(states):
    one, two = states["accumulating"], states["two_devices"]
    assert int(one["['step']"]) == int(two["['step']"]) == 8
    # The same sums in another order: float32 rounding only (a wrongly
    # scaled or doubled gradient moves LAMB's moments far more).
    assert _largest_difference(one, two) < 1e-5


def test_two_processes_train_as_two_devices(states):
    assert _largest_difference(states["two_processes"], states["two_devices"]) < 1e-6


REDUCTIONS = """
import json, re, keras, jax, numpy as np
import lamb_tf
from trainers.bert import model as model_lib, phases
from trainers.bert.jax_engine import devices, steps

config = model_lib.preset("tiny", vocabulary_size=512)
model = model_lib.build_pretraining_model(config)
optimizer = lamb_tf.LAMB(learning_rate=0.0, weight_decay=0.01)
optimizer.build(model.trainable_variables)
where = devices.Devices()
state = where.replicate(steps.State.of(model, optimizer))
rng = np.random.default_rng(0)
batch = where.batch({
    "token_ids": rng.integers(0, 512, (8, 32)).astype("int32"),
    "segment_ids": np.zeros((8, 32), "int32"),
    "padding_mask": np.ones((8, 32), "int32"),
    "masked_lm_positions": rng.integers(0, 32, (8, 4)).astype("int32"),
    "masked_lm_ids": rng.integers(0, 512, (8, 4)).astype("int32"),
    "masked_lm_weights": np.ones((8, 4), "float32"),
    "next_sentence_labels": rng.integers(0, 2, (8, 1)).astype("int32"),
})
schedule = phases.schedule(phases.plan([phases.Phase(seq_length=32, max_predictions=4,
    global_batch_size=8, steps=10, peak_learning_rate=1e-3)], 2, 32))
out = {}
for k in (1, 2):
    step = steps.make_train_step(model, optimizer, where.mesh, schedule, k, clip_norm=1.0)
    text = step.lower(state, batch).compile().as_text()
    # Computations by name, and the bodies of the while loops (the scan).
    computations, name = {}, None
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\\w.\\-]+) .*\\{$", line)
        if header:
            name = header.group(1)
            computations[name] = []
        elif name:
            computations[name].append(line)
    bodies = set(re.findall(r"body=%?([\\w.\\-]+)", text))
    def reductions(lines):
        return sum(1 for line in lines if re.search(r"all-reduce(-start)?\\(", line))
    out[k] = {
        "all": sum(reductions(lines) for lines in computations.values()),
        "in_loops": sum(reductions(computations.get(b, [])) for b in bodies),
        "loops": len(bodies),
    }
print("RESULT " + json.dumps(out))
"""


def test_the_step_reduces_across_devices_once_per_update_however_many_micro_batches():
    output = run_process("-c", REDUCTIONS, env=TWO_DEVICES)
    found = json.loads(output.split("RESULT ", 1)[1])
    one, two = found["1"], found["2"]
    assert two["loops"] >= 1  # the micro-batch scan is a loop
    assert two["in_loops"] == 0  # no reduction inside it
    assert 0 < two["all"] == one["all"]


# The tiny config for 40 + 6 steps, as shipped otherwise (dropout on).
CURVE_BINDINGS = [
    "phase1/Phase.steps = 40",
    "phase1/Phase.warmup_steps = 10",
    "phase2/Phase.steps = 6",
    "phase2/Phase.warmup_steps = 2",
    "train.steps_per_loop = 10",
    "train.checkpoint_every = None",
    "train.eval_steps = 5",
    "train.tensorboard = False",
]


def _log(model_dir, kind):
    with open(os.path.join(model_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [r["loss"] for r in records if r["kind"] == kind]


def test_the_jax_and_tensorflow_engines_follow_the_same_loss_curve(tmp_path, builtin_data_dir):
    runs = {}
    for engine, env in (("jax", JAX), ("tf", {"KERAS_BACKEND": "tensorflow"})):
        model_dir = tmp_path / engine
        bindings = CURVE_BINDINGS + [f"train.export = {engine == 'jax'}"]
        command = _command(model_dir, builtin_data_dir, bindings)
        command[2] = f"--engine={engine}"
        run_process(*command, env=env)
        runs[engine] = {kind: _log(model_dir, kind) for kind in ("train", "eval")}
    jax_run, tf_run = runs["jax"], runs["tf"]
    assert len(jax_run["train"]) == len(tf_run["train"]) == 5
    # The runs start from other random weights (each backend draws its own)
    # with their own dropout masks: the curves agree to 1.5% at every host
    # loop while the loss falls by more than 10 times that.
    assert jax_run["train"][-1] < 0.85 * jax_run["train"][0]
    for kind in ("train", "eval"):
        np.testing.assert_allclose(jax_run[kind], tf_run[kind], rtol=0.015)

    # The JAX run's encoder is a keras-hub preset that Keras on TensorFlow
    # loads, holding the run's final weights.
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "jax" / "encoder"))
    embedding = backbone.token_embedding.embeddings.numpy()
    final = _final_state(tmp_path / "jax")
    (saved,) = [v for k, v in final.items() if "trainable" in k and v.shape == embedding.shape]
    np.testing.assert_array_equal(embedding, saved)
