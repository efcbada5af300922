"""The JAX engine on CPU host devices, each run a trainer process (Keras'
backend is fixed when it is first imported): two processes joined by
`jax.distributed`, two host devices each, train as one device accumulating
four micro-batches (weights and moments, to float32 rounding), dropout on;
a run killed with SIGKILL resumes to the weights of an uninterrupted one;
the compiled step reduces across devices once per update, skips a
non-finite one, and draws distinct dropout masks for each piece of the
batch, the same on any layout of devices; orbax's INFO lines stay hidden.
(The TensorFlow engine from the same start: tests/trainers/bert/
test_engines.py; SIGTERM: tools/fault_drill.py.)"""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import float32
from tests.conftest import requires
from tests.scripts import ROOT, free_ports, logged_step, run_process

requires("jax", "jax")
requires("orbax.checkpoint", "jax")

from trainers.bert.engines.jax_engine.checkpoints import Checkpointer, saved_state  # noqa: E402

pytestmark = pytest.mark.slow

JAX = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
TWO_DEVICES = {**JAX, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
# The tiny config, shortened; both phases; its dropout (each piece of a
# global batch draws its masks by its index: the same however devices,
# processes and micro-batches split the batch) and no clipping (it would
# hide a gradient of the wrong size); two input pipelines, so the global
# batches are the same however devices and processes are arranged.
BINDINGS = [
    "phase1/Phase.steps = 12",
    "phase1/Phase.warmup_steps = 2",
    "phase2/Phase.steps = 4",
    "phase2/Phase.warmup_steps = 1",
    "train.steps_per_loop = 3",
    "train.checkpoint_every = 3",
    "train.keep_checkpoints = 10",
    "train.eval_steps = 1",
    "train.input_pipelines = 2",
    "train.clip_norm = None",
    "train.export = False",
    "train.tensorboard = False",
]
# One device, four micro-batches: the per-device batch of four devices.
ACCUMULATING = ["phase1/Phase.micro_batch_size = 32", "phase2/Phase.micro_batch_size = 16"]
KILL_AFTER = 6  # a logged step of phase 1


def _command(model_dir, data_dir, bindings, *flags):
    gin = [f"--gin_param={b}" for b in [*bindings, f'train.data_dir = "{data_dir}"']]
    return [
        sys.executable,
        "-m",
        "trainers.bert.main",
        "--engine=jax",
        "--gin_file=gin_configs/tiny_cpu.gin",
        *gin,
        f"--model_dir={model_dir}",
        *flags,
    ]


def _start(command, env):
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(os.environ, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(*processes):
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return outputs


def _killed_and_resumed(model_dir, data_dir):
    """The accumulating run, SIGKILLed once its log passes KILL_AFTER, then
    started again; returns the restart's output."""
    command = _command(model_dir, data_dir, BINDINGS + ACCUMULATING)
    process = _start(command, JAX)
    deadline = time.monotonic() + 600
    while process.poll() is None and logged_step(model_dir) < KILL_AFTER:
        assert time.monotonic() < deadline, "the run to kill took too long"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL  # killed while it trained
    return _finish(_start(command, JAX))[0]


def _slot_names():
    """The names of the optimizer's variables, in the order the JAX state
    keeps them (Keras builds them alike on every backend)."""
    import lamb_tf
    from trainers.bert.data.shards import builtin
    from trainers.bert.model import bert as model

    net = model.build_pretraining_model(model.preset("tiny", vocabulary_size=builtin.VOCAB_SIZE))
    optimizer = lamb_tf.LAMB(learning_rate=0.0)
    optimizer.build(net.trainable_variables)
    return list(float32.optimizer_slots(optimizer))


def _parts(state, slot_names):
    """(weights, optimizer slots by name, the rest) of a saved state."""
    weights = {k: v for k, v in state.items() if k.startswith("['trainable']")}
    slots = {
        slot_names[int(k.split("[")[-1].rstrip("]"))]: v
        for k, v in state.items()
        if k.startswith("['optimizer']")
    }
    rest = {k: v for k, v in state.items() if k not in weights and "['optimizer']" not in k}
    return weights, slots, rest


def _state(model_dir, step=None):
    checkpointer = Checkpointer(str(model_dir))
    path = (
        checkpointer.latest().path
        if step is None
        else os.path.join(checkpointer.directory, str(step))
    )
    return saved_state(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, builtin_data_dir):
    root = tmp_path_factory.mktemp("jax_runs")
    (accumulating,) = _finish(
        _start(_command(root / "accumulating", builtin_data_dir, BINDINGS + ACCUMULATING), JAX)
    )
    resumed = _killed_and_resumed(root / "killed", builtin_data_dir)
    address = f"127.0.0.1:{free_ports(1)[0]}"
    outputs = _finish(
        *[
            _start(
                _command(
                    root / "two_processes",
                    builtin_data_dir,
                    BINDINGS,
                    f"--coordinator_address={address}",
                    "--num_processes=2",
                    f"--process_id={index}",
                ),
                TWO_DEVICES,
            )
            for index in (1, 0)
        ]
    )
    assert all("4 CPU device(s) in 2 process(es) (JAX)" in output for output in outputs)
    return root, resumed, [accumulating, resumed, *outputs]


def test_four_devices_in_two_processes_train_as_one_device_accumulating_four(runs):
    root, _, _ = runs
    names = _slot_names()
    one, four = _state(root / "accumulating"), _state(root / "two_processes")
    assert one.keys() == four.keys()
    assert int(one["['step']"]) == int(four["['step']"]) == 16
    # The same sums in another order: float32 rounding only (tests/float32.py;
    # the weights' move from step 3 on stands for the whole run's, a
    # stricter bound), weights and moments.
    (weights, slots, rest), (got_weights, got_slots, got_rest) = (
        _parts(one, names),
        _parts(four, names),
    )
    early, _, _ = _parts(_state(root / "accumulating", 3), names)
    assert len(slots) > 2 * len(weights)
    float32.assert_same_weights(early, weights, got_weights)
    float32.assert_same_slots(slots, got_slots)
    for key in rest:
        np.testing.assert_array_equal(got_rest[key], rest[key], err_msg=key)
    # What a doubled gradient does to the moments (its weights barely move
    # otherwise: tests/trainers/bert/engines/tf_engine/test_steps.py runs one).
    factors = {"momentum": 2, "velocity": 4}
    doubled = {k: v * factors.get(k.rsplit("_", 1)[-1], 1) for k, v in slots.items()}
    with pytest.raises(AssertionError, match="Mismatched elements"):
        float32.assert_same_slots(slots, doubled)


def test_a_run_killed_and_resumed_ends_with_the_uninterrupted_weights(runs):
    root, resumed, _ = runs
    # Resumed mid-phase 1 from an orbax checkpoint and the input position
    # beside it, then through phase 2.
    assert "resuming from" in resumed and "(phase 1, step" in resumed, resumed[-2000:]
    expected, got = _state(root / "accumulating"), _state(root / "killed")
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# A line absl writes at INFO: "I1206 17:12:28.314295 ..." under `app.run`,
# "INFO:absl:..." without it.
ABSL_INFO = re.compile(r"^(I\d{4} \d\d:\d\d:\d\d\.\d+ |INFO:absl:)", re.MULTILINE)


def test_runs_print_no_info_lines_of_orbax(runs):
    # Each run saved checkpoints and the killed one read one: orbax logs
    # every save and read at INFO.
    _, _, outputs = runs
    for output in outputs:
        found = ABSL_INFO.search(output)
        assert found is None, output[found.start() : found.start() + 300]


REDUCTIONS = """
import json, re, keras, jax, numpy as np
import lamb_tf
from trainers.bert.model import bert as model_lib, tasks
from trainers.bert.run import phases
from trainers.bert.engines.jax_engine import devices, steps

config = model_lib.preset("tiny", vocabulary_size=512, dropout=0.0)
model = model_lib.build_pretraining_model(config)
optimizer = lamb_tf.LAMB(learning_rate=0.0, weight_decay=0.01)
optimizer.build(model.trainable_variables)
where = devices.Devices()
state = where.replicate(steps.State.of(model, optimizer))
rng = np.random.default_rng(0)
host = {
    "token_ids": rng.integers(0, 512, (8, 32)).astype("int32"),
    "segment_ids": np.zeros((8, 32), "int32"),
    "padding_mask": np.ones((8, 32), "int32"),
    "masked_lm_positions": rng.integers(0, 32, (8, 4)).astype("int32"),
    "masked_lm_ids": rng.integers(0, 512, (8, 4)).astype("int32"),
    "masked_lm_weights": np.ones((8, 4), "float32"),
    "next_sentence_labels": rng.integers(0, 2, (8, 1)).astype("int32"),
}
batch = where.batch(host)
schedule = phases.schedule(phases.plan([phases.Phase(seq_length=32, max_predictions=4,
    global_batch_size=8, steps=10, peak_learning_rate=1e-3)], 2, 32))
out = {}
for k in (1, 2):  # with the pieces' squared norms for the noise scale
    step = steps.make_train_step(
        model, optimizer, where.mesh, schedule, k, clip_norm=1.0, noise_scale=True)
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
# The noise: 2 devices x 2 micro-batches = 4 pieces of 2 sequences, each
# piece's gradient taken on its own (loss normalised by the whole batch).
step = steps.make_train_step(
    model, optimizer, where.mesh, schedule, 2, clip_norm=1.0, noise_scale=True)
_, (_, _, _, noise) = step(where.replicate(steps.State.of(model, optimizer)), batch)
task = tasks.PRETRAINING
totals = task.totals(host)
def piece_loss(trainable, part):
    outputs, _ = model.stateless_call(
        trainable, [v.value for v in model.non_trainable_variables],
        {n: part[n] for n in task.inputs}, training=True)
    return task.loss(task.batch_sums(outputs, part), totals)
trainable = [v.value for v in model.trainable_variables]
grads = [jax.grad(piece_loss)(trainable, {n: t[2 * i:2 * i + 2] for n, t in host.items()})
         for i in range(4)]
squares = [sum(float(np.sum(np.square(np.float64(g)))) for g in piece) for piece in grads]
whole = [sum(np.float64(piece[j]) for piece in grads) for j in range(len(trainable))]
out["noise"] = [float(x) for x in noise]
out["noise_reference"] = [4 * sum(squares), sum(float(np.sum(g * g)) for g in whole)]
# A step whose loss is not finite is skipped: weights, optimizer state and
# step stay; a finite one after it is applied.
step = steps.make_train_step(model, optimizer, where.mesh, schedule, 1, clip_norm=1.0)
before = jax.device_get(state)
bad = dict(batch, masked_lm_weights=where.batch(
    {"w": np.full((8, 4), np.nan, "float32")})["w"])
state, (sums, norm, finite, _) = step(state, bad)
after = jax.device_get(state)
out["skipped"] = {
    "finite": bool(finite),
    "step": int(after.step),
    "same": all(np.array_equal(a, b) for a, b in zip(
        before.trainable + before.optimizer, after.trainable + after.optimizer)),
}
state, (sums, norm, finite, _) = step(state, batch)
out["applied"] = {"finite": bool(finite), "step": int(state.step)}
print("RESULT " + json.dumps(out))
"""


def test_the_step_reduces_once_per_update_measures_each_piece_and_skips_a_non_finite_update():
    output = run_process("-c", REDUCTIONS, env=TWO_DEVICES)
    found = json.loads(output.split("RESULT ", 1)[1])
    one, two = found["1"], found["2"]
    assert two["loops"] >= 1  # the micro-batch scan is a loop
    assert two["in_loops"] == 0  # no reduction inside it
    assert 0 < two["all"] == one["all"]
    np.testing.assert_allclose(found["noise"], found["noise_reference"], rtol=float32.SUMS_RTOL)
    assert found["noise"][0] > 1.2 * found["noise"][1]
    assert found["skipped"] == {"finite": False, "step": 0, "same": True}
    assert found["applied"] == {"finite": True, "step": 1}


DROPOUT = """
import sys, jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import lamb_tf
from trainers.bert.model import bert as model_lib, tasks
from trainers.bert.engines.jax_engine import devices, steps

config = model_lib.preset("tiny", vocabulary_size=512, dropout=0.1)
model = model_lib.build_pretraining_model(config)
optimizer = lamb_tf.LAMB(learning_rate=0.0, weight_decay=0.01)
optimizer.build(model.trainable_variables)
rng = np.random.default_rng(0)
example = {
    "token_ids": rng.integers(0, 512, (1, 32)).astype("int32"),
    "segment_ids": np.zeros((1, 32), "int32"),
    "padding_mask": np.ones((1, 32), "int32"),
    "masked_lm_positions": rng.integers(0, 32, (1, 4)).astype("int32"),
    "masked_lm_ids": rng.integers(0, 512, (1, 4)).astype("int32"),
    "masked_lm_weights": np.ones((1, 4), "float32"),
    "next_sentence_labels": np.ones((1, 1), "int32"),
}
host = {n: np.repeat(v, 4, axis=0) for n, v in example.items()}  # a piece each
seeds = [i for i, v in enumerate(model.non_trainable_variables) if "seed_generator" in v.path]
slots = [v.path.split("/", 1)[1] for v in optimizer.variables]
initial = jax.device_get(steps.State.of(model, optimizer))  # each step donates a copy
out = {}
def save(prefix, state):
    out.update({f"{prefix}/weights/{i}": v for i, v in enumerate(state.trainable)})
    out.update({f"{prefix}/slots/{n}": v for n, v in zip(slots, state.optimizer)})
    out[prefix + "/seeds"] = np.stack([state.non_trainable[i] for i in seeds])
save("initial", initial)

# One update of the four pieces: 2 devices x 2 micro-batches, 1 device x 4.
for name, count, k in (("two_devices", 2, 2), ("one_device", 1, 4)):
    mesh = Mesh(np.asarray(jax.devices()[:count]), (devices.BATCH,))
    state = jax.device_put(initial, NamedSharding(mesh, P()))
    batch = jax.device_put(host, NamedSharding(mesh, P(devices.BATCH)))
    step = steps.make_train_step(model, optimizer, mesh, lambda s: 1e-3, k)
    state, (sums, _, _, _) = step(state, batch)
    save(name, jax.device_get(state))
    out[name + "/sums"] = np.asarray(sums)

# Each piece by itself, its masks drawn from the seed states folded with its
# index, and all four drawn from the unfolded states (one mask for all).
task = tasks.PRETRAINING
totals = task.totals(host)
def piece_sums(p, fold):
    values = [jax.random.fold_in(v, p) if fold and i in seeds else v
              for i, v in enumerate(initial.non_trainable)]
    part = {n: t[p:p + 1] for n, t in host.items()}
    outputs, _ = model.stateless_call(
        initial.trainable, values, {n: part[n] for n in task.inputs}, training=True)
    return np.asarray(task.batch_sums(outputs, part))
out["pieces"] = np.stack([piece_sums(p, True) for p in range(4)])
out["unfolded"] = np.stack([piece_sums(p, False) for p in range(4)])
np.savez(sys.argv[1], **out)
"""


def test_each_piece_of_an_update_draws_its_own_dropout_masks_whatever_the_layout(tmp_path):
    run_process("-c", DROPOUT, str(tmp_path / "dropout.npz"), env=TWO_DEVICES)
    with np.load(tmp_path / "dropout.npz") as saved:
        found = dict(saved)

    def part(prefix):
        return {k[len(prefix) :]: v for k, v in found.items() if k.startswith(prefix)}

    # Four identical examples, one per piece: one mask for all gives four
    # equal sums; the pieces' own masks, four different ones.
    pieces, unfolded = found["pieces"], found["unfolded"]
    for p in range(4):
        np.testing.assert_array_equal(unfolded[p], unfolded[0])
        for q in range(p):
            assert not np.allclose(pieces[p], pieces[q], rtol=float32.SUMS_RTOL), (p, q)
    # The step draws them so on either layout: its sums are the pieces'.
    for name in ("two_devices", "one_device"):
        np.testing.assert_allclose(found[name + "/sums"], pieces.sum(0), rtol=float32.SUMS_RTOL)
    assert not np.allclose(unfolded.sum(0), pieces.sum(0), rtol=float32.SUMS_RTOL)
    # Two devices accumulating two train as one device accumulating four,
    # and the seed states advance once per update on both.
    float32.assert_same_weights(
        part("initial/weights/"), part("one_device/weights/"), part("two_devices/weights/")
    )
    float32.assert_same_slots(part("one_device/slots/"), part("two_devices/slots/"))
    seeds = found["initial/seeds"]
    assert len(seeds) == 7  # the embeddings' and three per layer
    for name in ("two_devices", "one_device"):
        np.testing.assert_array_equal(found[name + "/seeds"], seeds + np.uint32([0, 1]))


def test_orbax_says_only_warnings_unless_verbosity_is_asked(tmp_path, caplog, monkeypatch):
    import jax.numpy as jnp

    from trainers.bert.engines.jax_engine import checkpoints, steps

    state = steps.State([jnp.ones(3)], [], [jnp.zeros(2)], jnp.asarray(2, jnp.int32))

    def orbax_info(model_dir):
        """Orbax's records below WARNING while a checkpoint is saved and read."""
        caplog.clear()
        checkpointer = checkpoints.Checkpointer(str(model_dir))
        checkpointer.save(state, phase=0)
        checkpointer.restore(checkpointer.latest(), state)
        return [
            r
            for r in caplog.records
            if r.levelno < logging.WARNING and r.pathname.startswith(checkpoints.ORBAX_SOURCE)
        ]

    # INFO: absl's level under `app.run` unless the command sets another.
    with caplog.at_level(logging.INFO):
        assert orbax_info(tmp_path / "quiet") == []
        monkeypatch.setattr(checkpoints, "_verbosity_asked", lambda: True)  # --verbosity given
        assert len(orbax_info(tmp_path / "asked")) > 10
