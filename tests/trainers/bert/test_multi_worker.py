"""Two worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy
(TF_CONFIG) train exactly as one process on two logical devices, and a run
with a killed worker resumes from its last checkpoint when both restart."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import keras
import pytest
import tensorflow as tf

from tests import float32
from tests.scripts import ROOT, free_ports, logged_step
from trainers.bert import train
from trainers.bert.data.shards import builtin
from trainers.bert.engines import positions
from trainers.bert.engines.tf_engine import checkpoints
from trainers.bert.model import bert as model

STEPS = 40
CONFIG = f"""
import trainers.bert.run.phases
train.phases = [@Phase()]
Phase.train_files = "builtin:pydoc"
Phase.seq_length = 32
Phase.max_predictions = 5
Phase.global_batch_size = 8
Phase.steps = {STEPS}
Phase.warmup_steps = 4
Phase.peak_learning_rate = 1e-2
train.model_overrides = {{"dropout": 0.0}}
train.input_pipelines = 2
train.steps_per_loop = 2
train.checkpoint_every = 10
train.eval_steps = 1
train.peak_flops = 1e11
train.export = False
train.tensorboard = False
"""
# Every wait is bounded: no worker may take longer than this.
TIMEOUT = 300

pytestmark = pytest.mark.slow


def _start_workers(model_dir, data_dir, config_file):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        log = open(os.path.join(model_dir, f"worker_{index}.out"), "w")
        command = [
            sys.executable,
            "-m",
            "trainers.bert.main",
            f"--gin_file={config_file}",
            f'--gin_param=train.data_dir = "{data_dir}"',
            "--strategy=multi_worker",
            f"--model_dir={model_dir}",
        ]
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
    return workers


def _output(model_dir, index):
    with open(os.path.join(model_dir, f"worker_{index}.out")) as f:
        return f.read()


def _wait(workers, model_dir):
    deadline = time.monotonic() + TIMEOUT
    for index, worker in enumerate(workers):
        try:
            status = worker.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            pytest.fail(
                f"worker {index} ran over {TIMEOUT} s:\n{_output(model_dir, index)[-3000:]}"
            )
        assert status == 0, _output(model_dir, index)[-3000:]


def _final_state(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, checkpoints.CHECKPOINTS))
    assert path.endswith(f"-{STEPS}")
    return checkpoints.saved_state(path)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "two_workers.gin"
    path.write_text(CONFIG)
    return str(path)


@pytest.fixture(scope="module")
def two_device_run(tmp_path_factory, builtin_data_dir, two_cpus, config_file):
    """The same config in this process on two logical CPU devices."""
    model_dir = tmp_path_factory.mktemp("two_devices")
    gin.clear_config()
    try:
        gin.parse_config_file(config_file)
        train.train(str(model_dir), strategy=two_cpus, data_dir=builtin_data_dir)
    finally:
        gin.clear_config()
    return _final_state(str(model_dir))


# The model's weights in a checkpoint: reached through the optimizer's list
# of the variables it trains; its slots, counters and the step are the rest.
WEIGHTS = "optimizer/_trainable_variables/"


def _initial_weights(data_dir):
    """The weights `train` starts from (its seed, its construction), named
    as in the checkpoint."""
    keras.utils.set_random_seed(0)
    config = model.bert_config("tiny", {"dropout": 0.0}, builtin.vocab_file(data_dir))
    variables = model.build_pretraining_model(config).trainable_variables
    return {f"{WEIGHTS}{i}/.ATTRIBUTES/VARIABLE_VALUE": v.numpy() for i, v in enumerate(variables)}


def _assert_same(state, expected, initial):
    """The same run but for the order of float32 additions (tests/float32.py):
    weights relative to how far they moved from `initial`, optimizer slots
    relative to each one's largest value, counters equal."""
    assert len(expected) > 100 and state.keys() == expected.keys()
    assert initial.keys() == {name for name in expected if name.startswith(WEIGHTS)}
    float32.assert_same_weights(
        initial, {n: expected[n] for n in initial}, {n: state[n] for n in initial}
    )
    rest = [name for name in expected if name not in initial]
    float32.assert_same_slots({n: expected[n] for n in rest}, {n: state[n] for n in rest})


def test_two_workers_train_as_two_devices_and_resume_after_a_kill(
    tmp_path, builtin_data_dir, config_file, two_device_run
):
    # One job killed mid-run and restarted ends with the weights of the same
    # config on two devices in one process: both the two-worker training and
    # its resume are checked by the one comparison at the end.
    model_dir = str(tmp_path)
    workers = _start_workers(model_dir, builtin_data_dir, config_file)
    deadline = time.monotonic() + TIMEOUT
    while logged_step(model_dir) < 12:
        assert workers[0].poll() is None, _output(model_dir, 0)[-3000:]
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    workers[1].send_signal(signal.SIGKILL)
    workers[1].wait(timeout=TIMEOUT)
    # The chief cannot go on without its peer: stop it too, as a cluster
    # manager restarting the job would.
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=TIMEOUT)
    killed_at = logged_step(model_dir)
    assert killed_at < STEPS, "the run ended before the kill; nothing was tested"
    saved = tf.train.latest_checkpoint(os.path.join(model_dir, checkpoints.CHECKPOINTS))
    assert saved is not None

    workers = _start_workers(model_dir, builtin_data_dir, config_file)
    _wait(workers, model_dir)
    assert "2 replica(s) (CollectiveAllReduceStrategy)" in _output(model_dir, 0)
    resumed = f"resuming from {saved} (phase 1, step {saved.rsplit('-', 1)[1]})"
    assert resumed in _output(model_dir, 0)
    _assert_same(_final_state(model_dir), two_device_run, _initial_weights(builtin_data_dir))
    # Only the chief wrote checkpoints and logs; each worker its input position.
    inputs = tmp_path / checkpoints.CHECKPOINTS / positions.INPUT
    assert sorted(os.listdir(inputs)) == ["worker_0", "worker_1"]
    assert not (tmp_path / "worker_1_scratch").exists()
