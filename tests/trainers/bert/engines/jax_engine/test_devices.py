"""The multi-process start of the JAX engine: settings that cannot start a
run stop before JAX is touched, naming the setting; and what it changes in
JAX on the CPU gives the same bits."""

import os
import subprocess
import sys

import pytest

from tests.conftest import requires
from tests.scripts import ROOT

requires("jax", "jax")

from trainers.bert.engines.jax_engine import devices  # noqa: E402
from trainers.bert.errors import ConfigError  # noqa: E402


@pytest.fixture
def initialize(monkeypatch):
    """Records what reaches `jax.distributed.initialize` instead of calling it."""
    calls = []
    monkeypatch.setattr(devices.jax.distributed, "initialize", lambda **kw: calls.append(kw))
    return calls


@pytest.mark.parametrize(
    "coordinator, processes, index, message",
    [
        (None, 2, None, "--num_processes=2 --process_id=None need --coordinator_address"),
        (None, None, 1, "--num_processes=None --process_id=1 need --coordinator_address"),
        ("10.0.0.1:1234", None, None, "--coordinator_address=10.0.0.1:1234 needs --num_processes"),
        ("10.0.0.1:1234", 2, None, "needs --num_processes and --process_id"),
        ("10.0.0.1:1234", None, 0, "needs --num_processes and --process_id"),
        ("10.0.0.1:1234", 2, 2, "--process_id=2 must be in [0, --num_processes=2)"),
        ("auto", 2, 0, "--coordinator_address=auto finds --num_processes and --process_id"),
    ],
)
def test_settings_that_cannot_start_are_named_before_jax_starts(
    initialize, coordinator, processes, index, message
):
    with pytest.raises(ConfigError) as error:
        devices.start(coordinator, processes, index)
    assert message in str(error.value)
    assert initialize == []


def test_settings_that_can_start_reach_jax_distributed(initialize):
    devices.start()  # one process: nothing to join
    devices.start(None, 1, 0)
    assert initialize == []
    devices.start("10.0.0.1:1234", 2, 1)
    devices.start("auto")
    assert initialize == [
        dict(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1),
        {},
    ]


# In a fresh process: the lowering is registered for the whole process.
THREEFRY = """
import jax, numpy as np
from trainers.bert.engines.jax_engine import devices

def masks():  # a new function each time: jit's cache holds the old lowering
    draw = lambda key: jax.random.bernoulli(jax.random.fold_in(key, 3), 0.9, (8, 128))
    key = jax.random.key(1)
    return np.asarray(jax.jit(draw)(key)), jax.jit(draw).lower(key).as_text().count("while")

rolled, loops = masks()
assert devices.unroll_threefry()
unrolled, loops_after = masks()
print(np.array_equal(rolled, unrolled), 0.8 < rolled.mean() < 1.0, loops, loops_after)
"""


def test_threefry_unrolled_on_the_cpu_draws_the_same_masks_without_a_loop():
    out = subprocess.run(
        [sys.executable, "-c", THREEFRY], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["True", "True"]
    assert int(out[2]) > 0 and int(out[3]) == 0  # JAX's CPU lowering loops; the unrolled does not


# The trainer imported on Keras' JAX backend, then a setting checked (it
# makes an optimizer, whose variables start JAX's devices).
EARLY = """
from jax._src import xla_bridge  # JAX's internals: the setting, and whether devices started
from trainers.bert import train
from trainers.bert.run.phases import Phase
print(xla_bridge._CPU_ENABLE_ASYNC_DISPATCH.value, bool(xla_bridge._backends))
phase = Phase(seq_length=64, global_batch_size=8, steps=1, peak_learning_rate=1e-3)
train.Pretraining(phases=[phase])
print(bool(xla_bridge._backends))
"""


def test_cpu_dispatch_is_synchronous_before_anything_starts_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", EARLY], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.stdout.split() == ["False", "False", "True"], out.stderr[-2000:]
