"""What a save killed mid-write leaves behind (its working folder, or files
written but never named by the checkpoint index, and its input positions)
is removed at the next start; the complete checkpoints stay and restore."""

import os
import shutil

import keras
import numpy as np
import tensorflow as tf

import lamb_tf
from trainers.bert.engines.tf_engine.checkpoints import Checkpointer


def _checkpointer(model_dir, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    optimizer = lamb_tf.LAMB()
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    phase = tf.Variable(0, dtype=tf.int64)
    checkpointer = Checkpointer(str(model_dir), model, optimizer, step, phase)
    checkpointer.positions.track(iter(tf.data.Dataset.range(10)))
    return checkpointer, model, step


def test_the_partial_files_of_a_killed_save_are_removed_at_the_next_start(tmp_path):
    checkpointer, model, step = _checkpointer(tmp_path, seed=0)
    step.assign(2)
    checkpointer.save()
    saved = model.get_weights()
    folder = tmp_path / "checkpoints"
    positions = folder / "input" / "worker_0"
    complete = sorted(p.name for p in folder.glob("ckpt-2.*")) + sorted(os.listdir(positions))
    # Killed after writing step 4's files, before the index named them.
    for name in os.listdir(folder):
        if name.startswith("ckpt-2."):
            shutil.copy(folder / name, folder / name.replace("ckpt-2", "ckpt-4"))
    for name in os.listdir(positions):
        shutil.copy(positions / name, positions / name.replace("position-2", "position-4"))
    # Killed while writing step 6's files, in their working folders.
    for working in (folder / "ckpt-6_temp", positions / "position-6_temp"):
        working.mkdir()
        (working / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 16)

    restarted, model, _ = _checkpointer(tmp_path, seed=1)  # other initial weights
    removed = restarted.remove_partial()
    assert {os.path.basename(p) for p in removed} == {
        "ckpt-4.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-6_temp",
        "position-4.index",
        "position-4.data-00000-of-00001",
        "position-6_temp",
    }
    left = sorted(p.name for p in folder.glob("ckpt-*")) + sorted(os.listdir(positions))
    assert left == complete
    latest = restarted.latest()
    assert latest.step == 2
    restarted.restore(latest.path, with_iterator=True)
    for a, b in zip(model.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
