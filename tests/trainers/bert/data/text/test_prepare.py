"""Corpora to BERT's text format: parallel over files, resumable, exact
duplicates removed, read back by the data tool."""

import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.scripts import run_tool
from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.shards import corpus
from trainers.bert.data.text import prepare
from trainers.bert.errors import DataError

pytestmark = pytest.mark.slow  # worker processes start with the library


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    wiki_dump.write(str(folder / "a.xml.bz2"), streams=2)
    texts = [
        "Paris is in France. It is large.",
        "Rome is in Italy.",
        "Paris is in France. It is large.",
    ]
    pq.write_table(pa.table({"text": texts}), folder / "b.parquet")
    (folder / "c.txt").write_text("Rome is in Italy.\n")  # a duplicate of b's second
    return folder


def _documents(folder):
    return list(corpus.read_documents(sorted(str(p) for p in folder.glob("*.txt"))))


def test_parallel_run_writes_bert_text_and_a_manifest(tmp_path, inputs):
    out = tmp_path / "out"
    manifest = prepare.prepare(str(inputs), str(out), prepare.Options(), processes=2, log=print)
    assert manifest["documents"] == 5 and manifest["skipped"] == {
        "redirect": 1,
        "namespace": 1,
        "disambiguation": 1,
    }
    assert json.loads((out / "manifest.json").read_text()) == manifest
    documents = _documents(out)
    assert documents[0][:2] == [
        "Alan Turing was an English maths scholar and computer scientist.",
        "He was born in London.",
    ]
    assert ["Paris is in France.", "It is large."] in documents
    assert manifest["sentences"] == sum(len(d) for d in documents)


def test_a_killed_run_resumes_with_the_unfinished_files(tmp_path, inputs, capsys):
    out = tmp_path / "out"
    prepare.prepare(str(inputs), str(out))
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    # As a kill leaves it: one file unfinished (no manifest, a partial shard).
    os.remove(out / "00001-b.parquet.json")
    os.rename(out / "00001-b.parquet-00000.txt", out / "00001-b.parquet-00000.txt.part")
    prepare.prepare(str(inputs), str(out))
    assert "2 of 3 input file(s) finished before: skipped" in capsys.readouterr().out
    again = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(again) == set(first)
    for name in again:  # the timings in a file's manifest differ
        if not name.endswith(".json"):
            assert again[name] == first[name], name


def test_dedup_keeps_each_document_once(tmp_path, inputs):
    manifest = prepare.prepare(str(inputs), str(tmp_path / "out"), prepare.Options(dedup=True))
    assert manifest["duplicates_removed"] == 2 and manifest["documents"] == 3
    documents = _documents(tmp_path / "out")
    assert documents.count(["Rome is in Italy."]) == 1 and len(documents) == 3


def test_command_line_and_errors(tmp_path, inputs):
    stdout = run_tool("tools/prepare_corpus.py", f"--input={inputs}/*.parquet",
                      f"--output_dir={tmp_path / 'out'}", "--dedup")  # fmt: skip
    assert "2 documents, 3 sentences" in stdout and "1 duplicates removed" in stdout
    with pytest.raises(DataError, match="no column 'body'"):
        prepare.prepare(
            f"{inputs}/b.parquet", str(tmp_path / "x"), prepare.Options(text_column="body")
        )
    assert not [p for p in (tmp_path / "x").iterdir() if p.suffix in (".txt", ".part")]


def _prepare_one(tmp_path, text, **options):
    """One plain-text file prepared in this process (prepare() starts worker
    processes): (its shard's lines, its counts)."""
    path = tmp_path / "a.txt"
    path.write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    counts = prepare._prepare_file((0, str(path), str(out), prepare.Options(**options)))
    (shard,) = out.glob("*.txt")
    return shard.read_text().splitlines(), counts


def test_sentences_keep_abbreviations_and_initials_whole(tmp_path):
    lines, counts = _prepare_one(
        tmp_path,
        "Dr. Smith left at 5 p.m. on Monday. He studied U.S. policy. "
        "J. R. R. Tolkien wrote it. Mr. Brown read it.\n",
    )
    assert lines == [  # one sentence per line
        "Dr. Smith left at 5 p.m. on Monday.",
        "He studied U.S. policy.",
        "J. R. R. Tolkien wrote it.",
        "Mr. Brown read it.",
    ]
    assert counts["sentences"] == 4


def test_a_file_in_work_reports_its_rate(tmp_path, capsys):
    _prepare_one(tmp_path, "One line.\n", report_every=0)  # a line at every document
    assert re.search(r"a\.txt: 1 documents, \d+ MB read \([\d.]+ MB/s\)", capsys.readouterr().out)
