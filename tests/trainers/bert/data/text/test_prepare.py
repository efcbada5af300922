"""Corpora to BERT's text format: parallel over files, resumable, exact
duplicates removed, read back by the data tool; a file cut short stops the
run with no shard of it that looks finished, and a rerun redoes it."""

import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.scripts import run_tool
from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.shards import corpus
from trainers.bert.data.text import prepare, sources
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


def test_a_dump_cut_short_stops_the_run_and_a_rerun_redoes_it(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Rome is in Italy.\n")
    dump = folder / wiki_dump.PART_FILE  # after a.txt: one worker prepares a.txt first
    wiki_dump.write(str(dump), wiki_dump.articles(60), streams=4)
    whole = dump.read_bytes()
    size = len(whole) * 6 // 10
    dump.write_bytes(whole[:size])  # as an interrupted download leaves it
    out = tmp_path / "out"
    with pytest.raises(DataError) as error:  # small shards: some are written before the cut
        prepare.prepare(str(folder), str(out), prepare.Options(shard_mb=0.002))
    assert re.fullmatch(
        re.escape(f"{dump}: cut short: its bz2 data ends before the end-of-stream marker, ")
        + re.escape(f"after {size:,} of its {size:,} bytes were read; the ")
        + r"\d\d+ documents prepared from it are not kept \(a rerun prepares the file again\)",
        str(error.value),
    ), str(error.value)
    # a.txt is finished; of the dump no shard, partial or whole, and no manifest.
    assert sorted(p.name for p in out.iterdir()) == ["00000-a.txt-00000.txt", "00000-a.txt.json"]

    dump.write_bytes(whole)  # downloaded again
    manifest = prepare.prepare(str(folder), str(out))
    assert "1 of 2 input file(s) finished before: skipped" in capsys.readouterr().out
    assert manifest["documents"] == 61 and len(manifest["shards"]) == 2


def test_a_worker_leaves_no_shard_of_a_file_cut_short(tmp_path):
    path = wiki_dump.write(str(tmp_path / "dump.xml"), wiki_dump.articles(60))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) * 6 // 10)
    out = tmp_path / "out"
    out.mkdir()
    job = (0, path, str(out), prepare.Options(shard_mb=0.002), sources.detect(path))
    with pytest.raises(DataError, match=r"cut short: its XML ends inside an element") as error:
        prepare._prepare_file(job)
    prepared = re.search(r"the (\d+) documents prepared from it are not kept", str(error.value))
    assert int(prepared.group(1)) >= 25  # two shards of them were written, then removed
    assert not list(out.iterdir())


def _prepare_one(tmp_path, text, **options):
    """One plain-text file prepared in this process (prepare() starts worker
    processes): (its shard's lines, its counts)."""
    path = tmp_path / "a.txt"
    path.write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    job = (0, str(path), str(out), prepare.Options(**options), sources.detect(str(path)))
    counts = prepare._prepare_file(job)
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
