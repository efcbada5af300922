"""Preemption, non-finite steps and unusable environments."""

import collections
import dataclasses
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.scripts import ROOT, SignalOnFirstProgress, logged_step, run_process
from tests.trainers.bert import runs
from trainers.bert.data.shards import builtin
from trainers.bert.engines.tf_engine import checkpoints
from trainers.bert.errors import ConfigError, DataError, TrainingError
from trainers.bert.run.preemption import EXIT_STATUS

SEQ, PREDICTIONS = runs.SEQ_LENGTH, runs.MAX_PREDICTIONS
PHASE = runs.phase(steps=8, warmup_steps=2)
# One phase of 8 steps, checkpoints every 4, TensorBoard's summaries
# written, no export.
_train = functools.partial(
    runs.train, phases=[PHASE], checkpoint_every=4, tensorboard=True, export=False
)


def test_sigterm_checkpoints_and_a_restart_ends_with_the_uninterrupted_weights(
    tmp_path, builtin_data_dir, monkeypatch
):
    # With dropout on: the checkpoint must carry the dropout seed states too.
    dropout = {"model_overrides": None}
    uninterrupted = _train(tmp_path / "full", builtin_data_dir, **dropout)
    stdout = SignalOnFirstProgress()
    monkeypatch.setattr(sys, "stdout", stdout)
    stopped = _train(tmp_path / "preempted", builtin_data_dir, **dropout)
    monkeypatch.undo()
    assert stopped["preempted"] and stopped["step"] == 2
    assert f"exiting with status {EXIT_STATUS}" in stdout.getvalue()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler removed again
    resumed = _train(tmp_path / "preempted", builtin_data_dir, **dropout)
    assert not resumed["preempted"] and resumed["step"] == 8
    # The restored state and the same compiled steps on the same batches:
    # the same operations in the same order, so identical weights.
    for a, b in zip(resumed["model"].weights, uninterrupted["model"].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_ctrl_c_checkpoints_and_exits_130(tmp_path, builtin_data_dir, monkeypatch):
    previous = signal.getsignal(signal.SIGINT)
    stdout = SignalOnFirstProgress(signal.SIGINT)
    monkeypatch.setattr(sys, "stdout", stdout)
    stopped = _train(tmp_path, builtin_data_dir)
    monkeypatch.undo()
    assert stopped["preempted"] and stopped["exit_status"] == 130 and stopped["step"] == 2
    assert "SIGINT: stopped at phase 1, step 2, checkpointed; exiting with status 130" in (
        stdout.getvalue()
    )
    assert tf.train.latest_checkpoint(str(tmp_path / checkpoints.CHECKPOINTS)).endswith("ckpt-2")
    assert signal.getsignal(signal.SIGINT) is previous  # Ctrl-C is KeyboardInterrupt again


def test_a_second_ctrl_c_stops_at_once(tmp_path, builtin_data_dir):
    builtin.shards(builtin_data_dir, 64, 10)  # the tiny config's first phase, made beforehand
    process = subprocess.Popen(
        [sys.executable, "-m", "trainers.bert.main", "--gin_file=gin_configs/tiny_cpu.gin"]
        + [f'--gin_param=train.data_dir = "{builtin_data_dir}"', f"--model_dir={tmp_path}"]
        + ["--gin_param=train.peak_flops = 1e11"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("phase 1/2"):  # the phase starts: its first steps are in flight
                process.send_signal(signal.SIGINT)
            elif line.startswith("SIGINT: finishing the steps in flight"):  # the first one noted
                process.send_signal(signal.SIGINT)
                break
        assert process.wait(timeout=300) == 130, "".join(printed)
        printed += process.stdout.readlines()
    finally:
        process.kill()
    assert "second Ctrl-C: stopping now, without a checkpoint" in process.stderr.read()
    # Stopped before the steps in flight ended (the first loop is 50 steps,
    # compiled first): none was logged, no checkpoint was written.
    assert logged_step(tmp_path) == 0
    assert not any("SIGINT: stopped at" in line for line in printed), "".join(printed)
    assert not (tmp_path / checkpoints.CHECKPOINTS).exists()


def _poisoned_shard(builtin_data_dir, folder):
    """The built-in shards with every masked-LM weight NaN."""
    pattern, _ = builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    source = sorted(tf.io.gfile.glob(pattern))[0]
    os.makedirs(folder)
    target = os.path.join(folder, "poisoned.tfrecord")
    with tf.io.TFRecordWriter(target) as writer:
        for raw in tf.data.TFRecordDataset(source).take(200):
            example = tf.train.Example.FromString(raw.numpy())
            weights = example.features.feature["masked_lm_weights"].float_list.value
            weights[:] = [float("nan")] * len(weights)
            writer.write(example.SerializeToString())
    return target


def test_non_finite_steps_are_skipped_then_restored_then_stop(tmp_path, builtin_data_dir):
    poisoned = _poisoned_shard(builtin_data_dir, str(tmp_path / "poisoned"))
    clean = dataclasses.replace(PHASE, steps=4)
    bad = dataclasses.replace(clean, train_files=poisoned, steps=20)
    model_dir = tmp_path / "run"
    with pytest.raises(TrainingError) as error:
        _train(model_dir, builtin_data_dir, phases=[clean, bad], max_non_finite_steps=4)
    message = str(error.value)
    assert "phase 2, step 4: 4 non-finite steps in a row again after restoring" in message
    log = (model_dir / "log.jsonl").read_text()
    assert '"skipped": 2' in log
    # Only the clean checkpoint exists, and every value in it is finite.
    folder = model_dir / checkpoints.CHECKPOINTS
    saved = tf.train.get_checkpoint_state(str(folder)).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in saved] == ["ckpt-4"]
    reader = tf.train.load_checkpoint(saved[0])
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype.is_floating:
            assert np.isfinite(reader.get_tensor(name)).all(), name


def test_unwritable_model_dir_is_named(tmp_path, builtin_data_dir):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="a_file/run' is not writable"):
        _train(blocker / "run", builtin_data_dir)


def test_too_little_disk_is_named(tmp_path, builtin_data_dir, monkeypatch):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(
        ConfigError, match=r"0.0 MB free on its disk, one checkpoint needs 1\d.\d MB"
    ):
        _train(tmp_path, builtin_data_dir)
    assert not (tmp_path / checkpoints.CHECKPOINTS).exists()


# PHASE as gin binds it.
PHASE_BINDINGS = {
    name: getattr(PHASE, name)
    for name in (
        "seq_length",
        "max_predictions",
        "global_batch_size",
        "steps",
        "warmup_steps",
        "peak_learning_rate",
    )
}


def test_a_failed_save_leaves_nothing_and_says_where_a_restart_resumes(tmp_path, builtin_data_dir):
    # A file-size limit below one checkpoint makes the save fail as a full
    # disk would (EFBIG instead of ENOSPC).
    builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    limit = 4 * 10**6  # the tiny model's checkpoint is about 12 MB

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    stderr = run_process(
        "-m",
        "trainers.bert.main",
        "--gin_file=gin_configs/tiny_cpu.gin",
        f'--gin_param=train.data_dir = "{builtin_data_dir}"',
        "--gin_param=train.phases = [@Phase()]",
        *[f"--gin_param=Phase.{k} = {v}" for k, v in PHASE_BINDINGS.items()],
        "--gin_param=train.checkpoint_every = 2",
        "--gin_param=train.steps_per_loop = 2",
        "--gin_param=train.jit_compile = False",
        "--gin_param=train.peak_flops = 1e11",
        f"--model_dir={tmp_path}",
        expect_status=1,
        preexec_fn=small_files,
    )
    assert stderr.startswith("bert-pretrain: error: saving the checkpoint of step 2") and (
        "its partial files were removed. A restart resumes from the start" in stderr
    ), stderr
    assert stderr.count("\n") == 1
    folder = tmp_path / checkpoints.CHECKPOINTS
    left = [p.name for p in folder.rglob("*") if "ckpt-2" in p.name or "position-2" in p.name]
    assert left == []


def test_an_unreadable_record_without_a_manifest_is_named(tmp_path, builtin_data_dir):
    pattern, _ = builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    source = sorted(tf.io.gfile.glob(pattern))[0]
    data = bytearray(open(source, "rb").read())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroed in the middle, same size
    corrupt = tmp_path / "data" / "corrupt.tfrecord"  # no manifest beside it
    os.makedirs(corrupt.parent)
    corrupt.write_bytes(bytes(data))
    model_dir = tmp_path / "run"
    with pytest.raises(DataError) as error:
        _train(
            model_dir,
            builtin_data_dir,
            phases=[dataclasses.replace(PHASE, train_files=str(corrupt))],
            jit_compile=False,
        )
    message = str(error.value)
    assert f"unreadable input record, {corrupt}: corrupted record at" in message
    assert "phase 1, after step" in message and "a restart resumes from" in message


def test_loss_spike_rollback_restores_then_stops(tmp_path, builtin_data_dir, capsys):
    # A learning rate of 100 makes the loss explode after the first
    # checkpoint: the rollback restores it once, then stops when the spike
    # comes back.
    diverging = dataclasses.replace(PHASE, steps=40, peak_learning_rate=100.0, warmup_steps=10)
    with pytest.raises(TrainingError) as error:
        _train(tmp_path, builtin_data_dir, phases=[diverging], loss_spike_factor=2.0)
    message = str(error.value)
    assert "loss spike (" in message and "again after restoring" in message
    restores = [line for line in capsys.readouterr().out.splitlines() if "restoring" in line]
    assert len(restores) == 1 and "loss spike (" in restores[0]
    saved = tf.train.get_checkpoint_state(str(tmp_path / checkpoints.CHECKPOINTS))
    assert [os.path.basename(p) for p in saved.all_model_checkpoint_paths] == ["ckpt-4"]


def test_loss_spike_factor_must_exceed_one(tmp_path, builtin_data_dir):
    with pytest.raises(ConfigError, match=r"train.loss_spike_factor must be a finite number > 1.0"):
        _train(tmp_path, builtin_data_dir, loss_spike_factor=0.5)
    assert not (tmp_path / checkpoints.CHECKPOINTS).exists()
