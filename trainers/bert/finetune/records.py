"""Fine-tuning inputs as TFRecords (as google-research/bert's run_squad and
run_classifier write them), so training reads them through the same
checkpointable tf.data pipeline as pretraining: a resumed run goes on with
the next batch.

Each record holds `input_ids`, `input_mask`, `segment_ids` (zero-padded to
the sequence length), its `index` among the features, and the task's labels.
A set is made once per (source file, settings, vocabulary) and named by
their hash; `NAME.count.json` beside it, written last, marks it finished.
Each write goes through a temporary name: workers sharing a folder may
make the same set at once.
"""

import hashlib
import json
import os

import tensorflow as tf

from trainers.bert.data import records


def serialize(index, token_ids, segment_ids, seq_length, **labels):
    """One feature -> a serialized `tf.train.Example`."""
    pad = [0] * (seq_length - len(token_ids))

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    features = {
        "input_ids": ints(list(token_ids) + pad),
        "input_mask": ints([1] * len(token_ids) + pad),
        "segment_ids": ints(list(segment_ids) + pad),
        "index": ints([index]),
    }
    for name, value in labels.items():
        if isinstance(value, float):
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            features[name] = ints([int(value)])
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def key(*parts):
    """A short hash of the files and settings a record set is made from
    (files by their SHA-256)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str) and os.path.isfile(part):
            part = records.file_sha256(part)
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def cached(folder, name, make):
    """-> (path, count) of `folder/name.tfrecord`, made by `make()` (an
    iterable of serialized records) unless a finished set is there."""
    path = os.path.join(folder, f"{name}.tfrecord")
    count_file = os.path.join(folder, f"{name}.count.json")
    if os.path.exists(path) and os.path.exists(count_file):
        with open(count_file) as f:
            return path, json.load(f)["records"]
    os.makedirs(folder, exist_ok=True)
    count = records.write_atomically(path, make())
    records.write_manifest(folder, {"records": count}, os.path.basename(count_file))
    return path, count
