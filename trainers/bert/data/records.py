"""The google-research/bert TFRecord schema: writing examples, atomic shards,
the manifest beside them (each shard's records, bytes and SHA-256)."""

import hashlib
import json
import os

import tensorflow as tf

from trainers import atomic
from trainers.bert.errors import DataError

MANIFEST = "manifest.json"


def feature_spec(max_seq_length, max_predictions_per_seq):
    """`tf.io.parse_single_example` spec of the schema."""
    ints = lambda n: tf.io.FixedLenFeature([n], tf.int64)  # noqa: E731
    return {
        "input_ids": ints(max_seq_length),
        "input_mask": ints(max_seq_length),
        "segment_ids": ints(max_seq_length),
        "masked_lm_positions": ints(max_predictions_per_seq),
        "masked_lm_ids": ints(max_predictions_per_seq),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": ints(1),
    }


def serialize(instance, max_seq_length, max_predictions_per_seq):
    """An `Instance` -> serialized `tf.train.Example`, zero-padded."""
    n, p = len(instance.input_ids), len(instance.masked_lm_positions)
    pad, pad_p = [0] * (max_seq_length - n), [0] * (max_predictions_per_seq - p)

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    features = {
        "input_ids": ints(list(instance.input_ids) + pad),
        "input_mask": ints([1] * n + pad),
        "segment_ids": ints(list(instance.segment_ids) + pad),
        "masked_lm_positions": ints(list(instance.masked_lm_positions) + pad_p),
        "masked_lm_ids": ints(list(instance.masked_lm_ids) + pad_p),
        "masked_lm_weights": tf.train.Feature(
            float_list=tf.train.FloatList(value=[1.0] * p + [0.0] * len(pad_p))
        ),
        "next_sentence_labels": ints([1 if instance.is_random_next else 0]),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    # Deterministic: map entries in key order, so equal seeds give equal bytes.
    return example.SerializeToString(deterministic=True)


def shard_name(output_dir, shard, num_shards):
    return os.path.join(output_dir, f"pretrain-{shard:05d}-of-{num_shards:05d}.tfrecord")


def write_atomically(path, records):
    """Writes records to `path` atomically (trainers/atomic.py): a crash never
    leaves a truncated file under the final name. Returns the number of
    records."""
    count = 0
    with atomic.temporary_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for record in records:
            writer.write(record)
            count += 1
    return count


def file_sha256(path, block=8 << 20):
    """Hex SHA-256 of a file, read through `tf.io.gfile` (so also on gs://).
    hashlib releases the GIL on large blocks: threads hash files in parallel."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remove_manifest(output_dir, name=MANIFEST):
    """Removes a manifest before its folder is rewritten: a set that then
    fails is never taken for a finished one."""
    try:
        os.remove(os.path.join(output_dir, name))
    except FileNotFoundError:
        pass


def write_manifest(output_dir, manifest, name=MANIFEST):
    """`manifest` as JSON, atomically (trainers/atomic.py: processes writing
    the same name never share a temporary file)."""
    path = os.path.join(output_dir, name)
    with atomic.file(path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return path


def read_manifest(output_dir, name=MANIFEST):
    """The manifest `name` in `output_dir` (a dict), or None where there is
    none. A manifest that is not a JSON object (edited by hand, cut short)
    raises DataError naming it."""
    path = os.path.join(output_dir, name)
    if not tf.io.gfile.exists(path):  # tf.io.gfile: also beside shards on gs://
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    remake = "make the data again with the data tool (python -m trainers.bert.data)"
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason}); {remake}") from None
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}): it was edited or cut short; {remake}"
        ) from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: not a manifest (a JSON object); {remake}")
    return manifest


def shard_entries(output_dir, manifest, name=MANIFEST):
    """{file name: entry} of a shard manifest's "shards" (None for a
    manifest without them: another program's, e.g. the text preparation's).
    An entry without a file name or a byte count raises DataError naming
    the manifest."""
    shards = manifest.get("shards")
    if shards is None:
        return None
    path = os.path.join(output_dir, name)
    if not isinstance(shards, list):
        raise DataError(
            f'{path}: its "shards" is not a list (edited by hand?); make the data again '
            "with the data tool (python -m trainers.bert.data)"
        )
    entries = {}
    for index, entry in enumerate(shards):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("file"), str)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256", ""), str)
        ):
            raise DataError(
                f'{path}: shard entry {index} ({entry!r:.80}) lacks a "file" name or a '
                '"bytes" count (edited by hand?); make the data again with the data tool '
                "(python -m trainers.bert.data)"
            )
        entries[entry["file"]] = entry
    return entries
