"""The input pipeline: schema compatibility, errors before training,
resumable position, per-replica batches."""

import shutil
import types

import numpy as np
import pytest
import tensorflow as tf

from trainers.bert.data import patterns, records
from trainers.bert.data.input import inputs, pipeline
from trainers.bert.errors import DataError


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _original_record(seq=8, preds=2, v2=False, drop=None, lengths=None):
    """A record built by hand, as google-research/bert's tool writes it."""
    lengths = lengths or {}
    ids_name, seg_name = (
        ("input_word_ids", "input_type_ids") if v2 else ("input_ids", "segment_ids")
    )
    features = {
        ids_name: _ints([2, 10, 11, 3, 12, 3, 0, 0][: lengths.get(ids_name, seq)]),
        "input_mask": _ints([1, 1, 1, 1, 1, 1, 0, 0]),
        seg_name: _ints([0, 0, 0, 0, 1, 1, 0, 0]),
        "masked_lm_positions": _ints([2, 0][:preds]),
        "masked_lm_ids": _ints([11, 0][:preds]),
        "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 0.0])),
        "next_sentence_labels": _ints([1]),
    }
    features.pop(drop, None)
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _write(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for r in records:
            writer.write(r)
    return str(path)


@pytest.mark.parametrize("v2", [False, True])
def test_original_and_v2_records_parse(tmp_path, v2):
    path = _write(tmp_path / "orig.tfrecord", [_original_record(v2=v2)] * 4)
    names = pipeline.validate([path], 8, 2, read_all=True)
    assert names == (pipeline.V2_NAMES if v2 else pipeline.V1_NAMES)
    batch = next(iter(pipeline.make_dataset([path], 8, 2, batch_size=2, names=names)))
    np.testing.assert_array_equal(batch["token_ids"][0], [2, 10, 11, 3, 12, 3, 0, 0])
    np.testing.assert_array_equal(batch["segment_ids"][0], [0, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(batch["padding_mask"][0], [1, 1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(batch["masked_lm_positions"][0], [2, 0])
    np.testing.assert_array_equal(batch["next_sentence_labels"], [1, 1])
    assert all(batch[k].dtype == tf.int32 for k in batch if k != "masked_lm_weights")
    assert batch["token_ids"].shape == (2, 8)


def test_no_files_match_names_the_pattern(tmp_path):
    with pytest.raises(DataError, match=r"No files match the pattern '.*missing-\*'"):
        patterns.match_files(f"{tmp_path}/missing-*")


def test_missing_feature_is_named(tmp_path):
    path = _write(tmp_path / "a.tfrecord", [_original_record(drop="masked_lm_ids")])
    with pytest.raises(DataError, match=r"a.tfrecord: feature 'masked_lm_ids' is missing"):
        pipeline.validate([path], 8, 2)


def test_wrong_length_names_feature_expected_and_found(tmp_path):
    path = _write(tmp_path / "a.tfrecord", [_original_record()])
    with pytest.raises(
        DataError, match=r"feature 'input_ids' has length 8, expected 16 .*max_seq_length=16"
    ):
        pipeline.validate([path], 16, 2)


def test_corrupt_shard_is_named(tmp_path):
    path = _write(tmp_path / "bad.tfrecord", [_original_record()] * 3)
    raw = bytearray(open(path, "rb").read())
    raw[20] ^= 0xFF  # flip bits inside the first record
    open(path, "wb").write(bytes(raw))
    with pytest.raises(DataError, match=r"bad.tfrecord: corrupt or truncated"):
        pipeline.validate([path], 8, 2)


def test_truncated_shard_is_named_by_the_manifest(tmp_path, builtin_data):
    folder, manifest = builtin_data
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shard = copy / manifest["shards"][1]["file"]
    shard.write_bytes(shard.read_bytes()[:-100])
    files = patterns.match_files(str(copy / "*.tfrecord"))
    with pytest.raises(DataError, match=rf"{shard.name}: \d+ bytes where manifest.json"):
        pipeline.validate(files, 128, 20)


def test_truncated_shard_without_manifest_fails_a_full_read(tmp_path):
    path = _write(tmp_path / "t.tfrecord", [_original_record()] * 5)
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-10])
    pipeline.validate([path], 8, 2)  # the first record is intact
    with pytest.raises(DataError, match="t.tfrecord: corrupt or truncated"):
        pipeline.validate([path], 8, 2, read_all=True)


def test_vocabulary_must_match_the_manifest(tmp_path, builtin_data):
    folder, _ = builtin_data
    other = tmp_path / "vocab.txt"
    other.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nlamb\n")
    files = patterns.match_files(str(folder / "*.tfrecord"))
    assert pipeline.validate(files, 128, 20, vocab_file=str(folder / "vocab.txt"))
    with pytest.raises(DataError, match="not the one the data .* was made with"):
        pipeline.validate(files, 128, 20, vocab_file=str(other))


def test_checkpointed_iterator_resumes_with_the_next_batch(tmp_path, builtin_data):
    folder, _ = builtin_data
    files = patterns.match_files(str(folder / "*.tfrecord"))
    dataset = pipeline.make_dataset(files, 128, 20, batch_size=4, seed=3)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    expected = [next(iterator)["token_ids"].numpy() for _ in range(3)]

    resumed = iter(pipeline.make_dataset(files, 128, 20, batch_size=4, seed=3))
    tf.train.Checkpoint(iterator=resumed).restore(path)
    got = [next(resumed)["token_ids"].numpy() for _ in range(3)]
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_per_replica_batches_under_mirrored_strategy(builtin_data, two_cpus):
    folder, _ = builtin_data
    files = patterns.match_files(str(folder / "*.tfrecord"))
    strategy = two_cpus
    global_batch = 8

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(global_batch)
        return pipeline.make_dataset(files, 128, 20, per_replica, input_context=context)

    batch = next(iter(strategy.distribute_datasets_from_function(dataset_fn)))
    parts = strategy.experimental_local_results(batch["token_ids"])
    assert [p.shape for p in parts] == [(4, 128), (4, 128)]


def _copy_of(tmp_path, builtin_data):
    folder, manifest = builtin_data
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy, manifest


def test_shard_corrupt_in_the_middle_is_named_by_its_checksum(tmp_path, builtin_data):
    copy, manifest = _copy_of(tmp_path, builtin_data)
    shard = copy / manifest["shards"][1]["file"]
    raw = bytearray(shard.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 8] = bytes(b ^ 0xFF for b in raw[middle : middle + 8])
    shard.write_bytes(bytes(raw))  # the same size: only the checksum can tell
    files = patterns.match_files(str(copy / "*.tfrecord"))
    with pytest.raises(
        DataError, match=rf"{shard}: its SHA-256 checksum differs from manifest.json: .*corrupt"
    ):
        pipeline.validate(files, 128, 20)


def test_manifest_without_checksums_is_checked_by_size(tmp_path, builtin_data):
    """Manifests written before checksums still validate; sizes still count."""
    copy, manifest = _copy_of(tmp_path, builtin_data)
    old = dict(
        manifest, shards=[{k: v for k, v in s.items() if k != "sha256"} for s in manifest["shards"]]
    )
    records.write_manifest(str(copy), old)
    files = patterns.match_files(str(copy / "*.tfrecord"))
    assert pipeline.validate(files, 128, 20) == pipeline.V1_NAMES
    shard = copy / manifest["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(DataError, match=rf"{shard.name}: \d+ bytes where manifest.json"):
        pipeline.validate(files, 128, 20)


def _phase(train_files, eval_files=None):
    return types.SimpleNamespace(
        train_files=train_files, eval_files=eval_files, seq_length=128, max_predictions=20
    )


def test_files_the_manifest_does_not_list_are_not_trained_on(tmp_path, builtin_data):
    """An earlier run's shard left beside a set: the phase's pattern matches
    it, its manifest does not list it; named before any compute."""
    copy, manifest = _copy_of(tmp_path, builtin_data)
    stale = copy / "pretrain-00000-of-00004.tfrecord"
    stale.write_bytes((copy / manifest["shards"][0]["file"]).read_bytes())
    with pytest.raises(DataError) as raised:
        inputs.phase_files(_phase(str(copy / "*.tfrecord")), None, None)
    assert str(raised.value) == (
        f"{copy}/manifest.json does not list 1 file(s) (pretrain-00000-of-00004.tfrecord) "
        f"that train_files '{copy}/*.tfrecord' matches, beside the 2 shards it lists: files "
        "not of its set are not trained on; remove them (the data tool's --overwrite replaces "
        "a folder's shards), or make the pattern match only the shards it lists"
    )
    stale.unlink()
    # The manifest and vocabulary matched by a pattern of every file: named too.
    with pytest.raises(
        DataError, match=r"list 2 file\(s\) \(manifest.json, vocab.txt\) that eval_files '"
    ):
        inputs.phase_files(_phase(str(copy / "*.tfrecord"), str(copy / "*")), None, None)
    assert inputs.phase_files(_phase(str(copy / "*.tfrecord")), None, None).names


def test_a_shard_the_manifest_lists_must_be_there(tmp_path, builtin_data):
    copy, manifest = _copy_of(tmp_path, builtin_data)
    first, second = (s["file"] for s in manifest["shards"])
    assert pipeline.validate([str(copy / first)], 128, 20)  # a subset of the set: fine
    (copy / second).unlink()
    with pytest.raises(
        DataError,
        match=rf"manifest.json lists 1 file\(s\) \({second}\), not in {copy}: the set is "
        "incomplete; restore",
    ):
        pipeline.validate([str(copy / first)], 128, 20)


def test_temporary_and_twice_matched_files_are_named(tmp_path, builtin_data):
    folder, manifest = builtin_data
    shard = str(folder / manifest["shards"][0]["file"])
    leftover = _write(tmp_path / "pretrain-00000-of-00001.tfrecord.tmp-123", [_original_record()])
    with pytest.raises(DataError, match=r"matches 1 file\(s\) \(.*tmp-123\): temporary files"):
        pipeline.validate([leftover], 8, 2)
    with pytest.raises(DataError, match=r"matches 1 file\(s\) .* more than once"):
        pipeline.validate([shard, shard], 128, 20)


@pytest.mark.parametrize(
    "content, named",
    [
        ('{"shards": [{"file": "a.tfrecord", "bytes"', r"not valid JSON \(line 1, column"),
        ('["a.tfrecord"]', r"not a manifest \(a JSON object\)"),
        ('{"shards": "a.tfrecord"}', r"its \"shards\" is not a list"),
        ('{"shards": [{"file": "a.tfrecord"}]}', r"shard entry 0 .* lacks a \"file\" name or"),
    ],
)
def test_a_manifest_edited_by_hand_is_named(tmp_path, content, named):
    path = _write(tmp_path / "a.tfrecord", [_original_record()])
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(DataError, match=rf"{tmp_path}/manifest.json: {named}.*make the data"):
        pipeline.validate([path], 8, 2)
