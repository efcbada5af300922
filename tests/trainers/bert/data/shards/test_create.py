"""The creation tool end to end: round trip, determinism, manifest, memory."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.scripts import ROOT, run_tool
from trainers.bert.data import patterns, records
from trainers.bert.data.input import pipeline
from trainers.bert.data.shards import corpus, create, instances, vocab
from trainers.bert.errors import ConfigError, DataError

# Runs a script and prints the peak resident memory of it and its children.
PEAK_OF_RUN = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print("PEAK", max(u.ru_maxrss for u in usage))
"""


def test_round_trip_text_to_pipeline(tmp_path, builtin_vocab):
    text = tmp_path / "text.txt"
    documents = [
        [f"Document {d} sentence {s} talks about layer adaptation." for s in range(6)]
        for d in range(8)
    ]
    text.write_text("\n\n".join("\n".join(d) for d in documents) + "\n")
    options = instances.Options(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
    create.create(str(text), str(tmp_path / "out"), options, vocab_file=builtin_vocab)

    v = vocab.Vocabulary(builtin_vocab)
    streams = [",".join(map(str, sum(v.encode(d), []))) for d in documents]
    files = patterns.match_files(str(tmp_path / "out" / "*.tfrecord"))
    names = pipeline.validate(files, 64, 10, vocab_file=builtin_vocab, read_all=True)
    dataset = pipeline.make_dataset(
        files, 64, 10, batch_size=1, names=names, shuffle=False, repeat=False
    )
    count = 0
    for batch in dataset:
        ids = batch["token_ids"][0].numpy().copy()
        positions = batch["masked_lm_positions"][0].numpy()
        weights = batch["masked_lm_weights"][0].numpy()
        for p, t, w in zip(positions, batch["masked_lm_ids"][0].numpy(), weights):
            if w:
                ids[p] = t
        length = int(batch["padding_mask"][0].numpy().sum())
        ids = ids[:length]
        seps = np.flatnonzero(ids == v.sep_id)
        assert ids[0] == v.cls_id and len(seps) == 2 and seps[-1] == length - 1
        segment_a = ",".join(map(str, ids[1 : seps[0]]))
        # Segment A is a contiguous run of one document's tokens.
        assert any(segment_a in s for s in streams)
        assert batch["token_ids"].dtype == tf.int32
        count += 1
    assert count == json.loads((tmp_path / "out" / "manifest.json").read_text())["instances"]


def test_same_seed_same_bytes(tmp_path, builtin_vocab):
    # Written by this process (small input), then by two worker processes.
    options = instances.Options(dupe_factor=1)
    outputs = []
    for run, workers in (("a", None), ("b", 2)):
        create.create(
            corpus.BUILTIN,
            str(tmp_path / run),
            options,
            vocab_file=builtin_vocab,
            num_shards=3,
            num_workers=workers,
        )
        outputs.append([p.read_bytes() for p in sorted((tmp_path / run).glob("*.tfrecord"))])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    create.create(
        corpus.BUILTIN, str(tmp_path / "c"), options, vocab_file=builtin_vocab, num_shards=3, seed=7
    )
    assert [p.read_bytes() for p in sorted((tmp_path / "c").glob("*.tfrecord"))] != outputs[0]


def test_manifest_describes_the_shards(builtin_data):
    folder, manifest = builtin_data
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["options"]["do_whole_word_mask"] is True
    assert manifest["vocab_sha256"] == vocab.file_sha256(str(folder / "vocab.txt"))
    for shard in manifest["shards"]:
        path = folder / shard["file"]
        assert path.stat().st_size == shard["bytes"]
        assert shard["sha256"] == records.file_sha256(str(path))
        assert sum(1 for _ in tf.data.TFRecordDataset(str(path))) == shard["instances"]
    assert manifest["instances"] == sum(s["instances"] for s in manifest["shards"]) > 1000


def test_command_line_with_original_flag_names(tmp_path, builtin_vocab):
    stdout, stderr = run_tool(
        "tools/create_pretraining_data.py",
        f"--output_file={tmp_path}/a.tfrecord,{tmp_path}/b.tfrecord",
        f"--vocab_file={builtin_vocab}",
        "--max_seq_length=32",
        "--max_predictions_per_seq=5",
        "--dupe_factor=1",
        "--do_whole_word_mask",
        "--random_seed=3",
        timeout=300,
        with_stderr=True,
    )
    assert "[2/2]" in stdout
    assert stderr == ""  # nor TensorFlow's start-up lines from the worker processes
    files = sorted(str(p) for p in tmp_path.glob("*.tfrecord"))
    assert [os.path.basename(f) for f in files] == ["a.tfrecord", "b.tfrecord"]
    assert pipeline.validate(files, 32, 5, read_all=True) == pipeline.V1_NAMES
    assert records.read_manifest(str(tmp_path))["options"]["max_seq_length"] == 32


def test_memory_stays_flat_as_the_corpus_grows(tmp_path):
    """Peak memory of the whole tool for 1x and 10x the corpus."""
    text = "\n\n".join("\n".join(d) for d in corpus.builtin_documents()) + "\n"
    peaks, sizes = [], []
    for copies in (1, 10):
        folder = tmp_path / f"x{copies}"
        folder.mkdir()
        (folder / "corpus.txt").write_text(text * copies)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_OF_RUN,
                "tools/create_pretraining_data.py",
                f"--input_file={folder}/corpus.txt",
                f"--output_dir={folder}/out",
                "--vocab_size=2048",
                "--dupe_factor=1",
                "--num_shards=2",
                "--num_workers=1",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        peaks.append(int(proc.stdout.split("PEAK ")[-1]))
        manifest = records.read_manifest(str(folder / "out"))
        sizes.append(manifest["instances"])
    assert sizes[1] > 9 * sizes[0]  # ten times the work was done
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_array_job_tasks_give_the_single_machine_output(tmp_path, builtin_vocab):
    """Two tasks (as on two machines) then a merge: the same shards and
    manifest counts as one machine writing them all."""
    options = instances.Options(dupe_factor=1)
    single = create.create(
        corpus.BUILTIN, str(tmp_path / "one"), options, vocab_file=builtin_vocab, num_shards=3
    )
    for task in (1, 0):
        if task == 0:
            with pytest.raises(ValueError, match="Task 0 has not finished"):
                create.merge_manifests(str(tmp_path / "many"), 2)
        create.create(
            corpus.BUILTIN,
            str(tmp_path / "many"),
            options,
            vocab_file=builtin_vocab,
            num_shards=3,
            task_index=task,
            num_tasks=2,
        )
    merged = create.merge_manifests(str(tmp_path / "many"), 2)
    assert merged["shards"] == single["shards"]  # checksums included
    assert all(len(s["sha256"]) == 64 for s in merged["shards"])
    assert merged["instances"] == single["instances"]
    for shard in single["shards"]:
        one = (tmp_path / "one" / shard["file"]).read_bytes()
        assert (tmp_path / "many" / shard["file"]).read_bytes() == one


def test_array_job_needs_one_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="needs --vocab_file"):
        create.create(corpus.BUILTIN, str(tmp_path), instances.Options(), num_tasks=2)
    with pytest.raises(ValueError, match="task_index=2"):
        create.create(corpus.BUILTIN, str(tmp_path), instances.Options(), task_index=2, num_tasks=2)


SMALL = instances.Options(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)


def _text(path, documents):
    path.write_text("\n\n".join("\n".join(d) for d in documents) + "\n")
    return str(path)


def _prose(n):
    return [f"Sentence {s} of document {n} is about layer adaptation." for s in range(6)]


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_input_without_documents_is_named(tmp_path, builtin_vocab, content):
    (tmp_path / "empty.txt").write_text(content)
    for vocab_file in (builtin_vocab, None):
        with pytest.raises(DataError, match=r"empty.txt' holds no documents"):
            create.create(str(tmp_path / "empty.txt"), str(tmp_path / "out"), SMALL, vocab_file)
    assert not (tmp_path / "out").exists()  # found before anything was written
    documents = corpus.read_documents([str(tmp_path / "empty.txt")])
    with pytest.raises(DataError, match=r"empty.txt' holds no documents"):
        vocab.train_vocabulary(documents, str(tmp_path / "vocab"))
    assert not (tmp_path / "vocab" / "vocab.txt").exists()


def test_too_small_a_vocabulary_is_refused(tmp_path):
    text = _text(tmp_path / "tiny.txt", [["Hello world.", "A tiny text."], ["Another one."]])
    with pytest.raises(DataError, match=r"tiny.txt' is too small to train a vocabulary on"):
        create.create(text, str(tmp_path / "out"), SMALL, num_shards=2)
    assert not (tmp_path / "out" / "vocab.txt").exists()
    assert not (tmp_path / "out" / "manifest.json").exists()
    with pytest.raises(DataError, match=r"tiny.txt' is too small .* fewer than 100"):
        vocab.train_vocabulary(corpus.read_documents([text]), str(tmp_path / "v"))
    with pytest.raises(ConfigError, match=r"--vocab_size=50 is too small"):
        create.create(text, str(tmp_path / "out"), SMALL, vocab_size=50)


def test_more_shards_than_documents_is_refused_before_any_work(tmp_path, builtin_vocab):
    text = _text(tmp_path / "three.txt", [_prose(n) for n in range(3)])
    with pytest.raises(
        DataError,
        match=r"three.txt' holds 3 document\(s\), fewer than the 4 shards.*--num_shards=3",
    ):
        create.create(text, str(tmp_path / "out"), SMALL, builtin_vocab, num_shards=4)
    assert not (tmp_path / "out").exists()


def test_failed_set_leaves_no_manifest(tmp_path, builtin_vocab):
    """A shard without instances (here: its one document has one sentence)
    fails the set after the workers: no manifest, not even the earlier one
    it replaces (--overwrite)."""
    out = str(tmp_path / "out")
    good = _text(tmp_path / "good.txt", [_prose(0), _prose(1)])
    create.create(good, out, SMALL, builtin_vocab, num_shards=1, num_workers=1)
    assert records.read_manifest(out) is not None
    uneven = _text(tmp_path / "uneven.txt", [_prose(0), ["Just one sentence here."]])
    with pytest.raises(
        DataError,
        match=r"1 of 2 shards got no instances \(pretrain-00001-of-00002.tfrecord\): "
        r"\d+ instances from '.*uneven.txt' for 2 shards; use fewer --num_shards",
    ):
        create.create(
            uneven, out, SMALL, builtin_vocab, num_shards=2, num_workers=1, overwrite=True
        )
    assert records.read_manifest(out) is None
    assert not list((tmp_path / "out").glob("*-of-00002.tfrecord"))


def test_no_instances_is_named(tmp_path, builtin_vocab):
    text = _text(tmp_path / "short.txt", [["Only one sentence."]])
    with pytest.raises(DataError, match=r"No instances were made from '.*short.txt'"):
        create.create(text, str(tmp_path / "out"), SMALL, builtin_vocab, num_shards=1)
    assert records.read_manifest(str(tmp_path / "out")) is None
    assert not list((tmp_path / "out").glob("*.tfrecord"))
