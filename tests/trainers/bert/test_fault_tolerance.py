"""Preemption, non-finite steps and unusable environments."""

import collections
import dataclasses
import io
import os
import shutil
import signal
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainers.bert import train
from trainers.bert.data import builtin
from trainers.bert.errors import ConfigError, TrainingError
from trainers.bert.phases import Phase
from trainers.bert.preemption import EXIT_STATUS
from trainers.bert.tf_engine import checkpoints

SEQ, PREDICTIONS = 32, 5


def _phases(train_files="builtin:pydoc", steps=8):
    return [
        Phase(
            seq_length=SEQ,
            max_predictions=PREDICTIONS,
            global_batch_size=8,
            steps=steps,
            warmup_steps=2,
            peak_learning_rate=1e-2,
            train_files=train_files,
        )
    ]


def _train(model_dir, data_dir, **kwargs):
    settings = dict(
        phases=_phases(),
        model_overrides={"dropout": 0.0},
        steps_per_loop=2,
        checkpoint_every=4,
        eval_steps=1,
        data_dir=data_dir,
        peak_flops=1e11,
        export=False,
    )
    settings.update(kwargs)
    return train.train(str(model_dir), **settings)


class _TermOnFirstProgress(io.StringIO):
    """stdout that sends this process SIGTERM when the first progress line
    is printed, as a preemption notice would arrive mid-training."""

    def write(self, text):
        if "phase 1 [" in text and "sent" not in self.__dict__:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


def test_sigterm_checkpoints_and_a_restart_ends_with_the_uninterrupted_weights(
    tmp_path, builtin_data_dir, monkeypatch
):
    # With dropout on: the checkpoint must carry the dropout seed states too.
    dropout = {"model_overrides": None}
    uninterrupted = _train(tmp_path / "full", builtin_data_dir, **dropout)
    stdout = _TermOnFirstProgress()
    monkeypatch.setattr(sys, "stdout", stdout)
    stopped = _train(tmp_path / "preempted", builtin_data_dir, **dropout)
    monkeypatch.undo()
    assert stopped["preempted"] and stopped["step"] == 2
    assert f"exiting with status {EXIT_STATUS}" in stdout.getvalue()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler removed again
    resumed = _train(tmp_path / "preempted", builtin_data_dir, **dropout)
    assert not resumed["preempted"] and resumed["step"] == 8
    for a, b in zip(resumed["model"].weights, uninterrupted["model"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)


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
    clean = _phases(steps=4)[0]
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


def test_loss_spike_rollback_restores_then_stops(tmp_path, builtin_data_dir, capsys):
    # A learning rate of 100 makes the loss explode after the first
    # checkpoint: the rollback restores it once, then stops when the spike
    # comes back.
    diverging = dataclasses.replace(_phases(steps=40)[0], peak_learning_rate=100.0, warmup_steps=10)
    with pytest.raises(TrainingError) as error:
        _train(tmp_path, builtin_data_dir, phases=[diverging], loss_spike_factor=2.0)
    message = str(error.value)
    assert "loss spike (" in message and "again after restoring" in message
    restores = [line for line in capsys.readouterr().out.splitlines() if "restoring" in line]
    assert len(restores) == 1 and "loss spike (" in restores[0]
    saved = tf.train.get_checkpoint_state(str(tmp_path / checkpoints.CHECKPOINTS))
    assert [os.path.basename(p) for p in saved.all_model_checkpoint_paths] == ["ckpt-4"]


def test_loss_spike_factor_must_exceed_one(tmp_path, builtin_data_dir):
    with pytest.raises(ConfigError, match="train.loss_spike_factor must be > 1"):
        _train(tmp_path, builtin_data_dir, loss_spike_factor=0.5)
    assert not (tmp_path / checkpoints.CHECKPOINTS).exists()
