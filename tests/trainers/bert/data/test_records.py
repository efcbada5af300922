import numpy as np
import pytest
import tensorflow as tf

from trainers.bert.data import records
from trainers.bert.data.shards import instances

# The schema written out independently of the package.
SCHEMA = {
    "input_ids": tf.io.FixedLenFeature([16], tf.int64),
    "input_mask": tf.io.FixedLenFeature([16], tf.int64),
    "segment_ids": tf.io.FixedLenFeature([16], tf.int64),
    "masked_lm_positions": tf.io.FixedLenFeature([3], tf.int64),
    "masked_lm_ids": tf.io.FixedLenFeature([3], tf.int64),
    "masked_lm_weights": tf.io.FixedLenFeature([3], tf.float32),
    "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
}


def test_serialized_instance_parses_with_plain_schema():
    instance = instances.Instance(
        input_ids=[2, 7, 4, 3, 9, 3],
        segment_ids=[0, 0, 0, 0, 1, 1],
        is_random_next=True,
        masked_lm_positions=[2],
        masked_lm_ids=[8],
    )
    parsed = tf.io.parse_single_example(records.serialize(instance, 16, 3), SCHEMA)
    np.testing.assert_array_equal(parsed["input_ids"], [2, 7, 4, 3, 9, 3] + [0] * 10)
    np.testing.assert_array_equal(parsed["input_mask"], [1] * 6 + [0] * 10)
    np.testing.assert_array_equal(parsed["segment_ids"], [0] * 4 + [1, 1] + [0] * 10)
    np.testing.assert_array_equal(parsed["masked_lm_positions"], [2, 0, 0])
    np.testing.assert_array_equal(parsed["masked_lm_ids"], [8, 0, 0])
    np.testing.assert_array_equal(parsed["masked_lm_weights"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(parsed["next_sentence_labels"], [1])


def test_shards_are_written_atomically(tmp_path):
    path = str(tmp_path / "shard.tfrecord")

    def failing():
        yield b"one"
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        records.write_atomically(path, failing())
    assert list(tmp_path.iterdir()) == []  # neither the shard nor a temporary

    assert records.write_atomically(path, [b"a", b"b"]) == 2
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"a", b"b"]
