"""The built-in data: the same bytes on every machine, from the corpus and
vocabulary kept with the code."""

import gzip
import json
import os
import subprocess
import sys
import types

from tests.scripts import ROOT
from trainers.bert.data.shards import builtin, corpus, vocab

BUILD = """
import sys
from trainers.bert.data.shards import builtin
builtin.shards(sys.argv[1], 64, 10, dupe_factor=1)
"""


def _files(folder):
    """Relative path -> bytes of every file, manifests without timings."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("seconds")
            data = manifest
        found[str(path.relative_to(folder))] = data
    return found


def test_two_builds_are_byte_identical(tmp_path):
    """Two fresh builds in two processes (other hash seeds): vocab.txt, every
    shard and the manifests (but for their timings) are the same bytes."""
    builds = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD, str(tmp_path / name)],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, seed in (("a", "1"), ("b", "2"))
    ]
    for build in builds:
        _, stderr = build.communicate(timeout=300)
        assert build.returncode == 0, stderr[-3000:]
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert sum(name.endswith(".tfrecord") for name in a) == 4  # 2 train, 2 held out
    for name in a:
        assert a[name] == b[name], name
    with open(builtin.KEPT_VOCAB, "rb") as f:
        assert a["vocab.txt"] == f.read()


def test_vocab_file_copies_the_kept_vocabulary(tmp_path):
    with open(builtin.KEPT_VOCAB, "rb") as f:
        kept = f.read()
    path = builtin.vocab_file(str(tmp_path))
    assert open(path, "rb").read() == kept
    with open(path, "w") as f:  # a vocabulary trained before it was kept
        f.write("\n".join(vocab.SPECIAL_TOKENS + ["lamb"]) + "\n")
    assert open(builtin.vocab_file(str(tmp_path)), "rb").read() == kept
    tokens = kept.decode().splitlines()
    assert len(tokens) == builtin.VOCAB_SIZE and tokens[:5] == vocab.SPECIAL_TOKENS


def test_the_kept_corpus_is_read_not_the_running_pythons(monkeypatch):
    fake = types.ModuleType("pydoc_data.topics")
    fake.topics = {"only": "One topic. Of two sentences."}
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", fake)
    corpus.builtin_topics.cache_clear()
    try:
        documents = list(corpus.builtin_documents())
    finally:
        corpus.builtin_topics.cache_clear()
    assert len(documents) > 50
    with gzip.open(corpus.BUILTIN_TOPICS, "rt", encoding="utf-8") as f:
        assert corpus.builtin_topics() == json.load(f)


def test_the_kept_corpus_bytes_are_reproducible():
    """`regenerate` writes these bytes again from the same topics: gzip's
    header holds no time, file name or operating system."""
    with open(corpus.BUILTIN_TOPICS, "rb") as f:
        kept = f.read()
    assert kept[4:8] == b"\0\0\0\0" and kept[3] == 0 and kept[9] == 255  # mtime, flags, OS
    assert builtin.corpus_bytes(corpus.builtin_topics()) == kept
