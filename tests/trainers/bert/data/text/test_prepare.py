"""Corpora to BERT's text format: parallel over files and over the stream
ranges of a multistream dump (the same bytes on any process count),
resumable, exact duplicates removed, read back by the data tool; a file or
range cut short stops the run with no shard of it that looks finished, and
a rerun redoes it."""

import json
import os
import pathlib
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.scripts import run_tool
from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.shards import corpus
from trainers.bert.data.text import prepare, sources, streams
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
    job = prepare.Job(0, path, str(out), prepare.Options(shard_mb=0.002), sources.detect(path))
    with pytest.raises(DataError, match=r"cut short: its XML ends inside an element") as error:
        prepare._prepare_job(job)
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
    job = prepare.Job(0, str(path), str(out), prepare.Options(**options), sources.detect(str(path)))
    counts = prepare._prepare_job(job)
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


# A multistream dump of about 34 KB in 30 streams: 4 ranges of 10 KB.
RANGES = prepare.Options(range_mb=0.01)


def _files(folder):
    """{name: bytes} of a run's output; a job's manifest without its time."""
    found = {}
    for path in sorted(folder.iterdir()):
        found[path.name] = path.read_bytes()
        if path.suffix == ".json" and path.name != prepare.MANIFEST:
            found[path.name] = {
                k: v for k, v in json.loads(path.read_bytes()).items() if k != "seconds"
            }
    return found


def test_a_multistream_dump_is_cut_into_ranges_that_any_process_count_prepares_alike(
    tmp_path, capsys
):
    folder = tmp_path / "in"
    folder.mkdir()
    dump = wiki_dump.write_multistream(folder)  # the index beside it, in the folder
    index = str(folder / wiki_dump.MULTISTREAM_INDEX)
    one = prepare.prepare(str(folder), str(tmp_path / "one"), RANGES, processes=1)
    said = capsys.readouterr().out
    assert f"{dump}: 4 ranges of about 0.01 MB, cut at the offsets of its index {index}" in said
    assert f"note: {index}: the index of a dump, used to cut it, not read as text" in said
    assert re.search(re.escape(f"[2/4] {dump} bytes 0.0-0.0 MB: ") + r"\d+ documents", said)
    two = prepare.prepare(str(folder), str(tmp_path / "two"), RANGES, processes=2)
    assert one == two and one["inputs"] == [dump] and len(one["shards"]) == 4
    assert one["bytes_in"] == os.path.getsize(dump)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")  # byte for byte, but times
    # Without the index: the stream starts found in the dump, the same cuts.
    os.remove(index)
    prepare.prepare(dump, str(tmp_path / "scanned"), RANGES)
    assert _files(tmp_path / "scanned") == _files(tmp_path / "one")
    # Not cut: the same documents and counts, in one job.
    whole = prepare.prepare(dump, str(tmp_path / "whole"))
    assert _documents(tmp_path / "whole") == _documents(tmp_path / "one")
    other = ("shards", "bytes_out")  # a shard's end is one newline, not a blank line
    assert {k: v for k, v in whole.items() if k not in other} == {
        k: v for k, v in one.items() if k not in other
    }
    assert one["documents"] == 300 and sorted(one["skipped"]) == [
        "disambiguation",
        "namespace",
        "redirect",
    ]
    # The articles' text is one: duplicates across ranges are found too.
    deduped = prepare.prepare(
        dump, str(tmp_path / "dedup"), prepare.Options(range_mb=0.01, dedup=True)
    )
    assert deduped["documents"] == 1 and deduped["duplicates_removed"] == 299
    assert _documents(tmp_path / "dedup") == _documents(tmp_path / "one")[:1]


def test_a_restart_prepares_only_the_ranges_not_finished(tmp_path, capsys):
    dump = wiki_dump.write_multistream(tmp_path)
    out = tmp_path / "out"
    prepare.prepare(dump, str(out), RANGES)
    first = _files(out)
    stem = f"00000-{wiki_dump.MULTISTREAM}-r00002"
    os.remove(out / f"{stem}.json")  # as a kill leaves it: a partial shard, no manifest
    os.rename(out / f"{stem}-00000.txt", out / f"{stem}-00000.txt.part")
    capsys.readouterr()
    prepare.prepare(dump, str(out), RANGES)
    said = capsys.readouterr().out
    assert "3 of 4 input file(s) and stream range(s) finished before: skipped" in said
    assert re.search(r"^\[1/1\] .* bytes 0\.0-0\.0 MB: ", said, re.M), said
    assert _files(out) == first
    # Cut otherwise (another range size): the finished ranges would overlap its own.
    manifest = out / f"00000-{wiki_dump.MULTISTREAM}-r00000.json"
    end = json.loads(manifest.read_text())["range"][1]
    with pytest.raises(DataError) as error:
        prepare.prepare(dump, str(out), prepare.Options(range_mb=0.02))
    assert str(error.value) == (
        f"{manifest}: bytes 0-{end:,} of {dump}, finished by an earlier run that cut the file "
        "otherwise; this run cuts it into 2 range(s) of about 0.02 MB: rerun with that run's "
        "--range_mb, or prepare into a new --output_dir"
    )
    whole = tmp_path / "whole"
    prepare.prepare(dump, str(whole))  # not cut: smaller than a range of 64 MB
    with pytest.raises(DataError) as error:
        prepare.prepare(dump, str(whole), RANGES)
    assert str(error.value) == (
        f"{whole}/00000-{wiki_dump.MULTISTREAM}.json: all of {dump}, finished whole by an earlier "
        "run; this run cuts it into 4 range(s) of about 0.01 MB: rerun with --range_mb=1 to keep "
        "it whole, or prepare into a new --output_dir"
    )


def test_a_multistream_dump_cut_short_keeps_the_ranges_before_the_cut(tmp_path, capsys):
    dump = wiki_dump.write_multistream(tmp_path, index=False)
    whole = pathlib.Path(dump).read_bytes()
    size = len(whole) - 200  # inside the last stream of pages, in the last range
    with open(dump, "wb") as f:
        f.write(whole[:size])
    out = tmp_path / "out"
    with pytest.raises(DataError) as error:  # small shards: some written before the cut
        prepare.prepare(dump, str(out), prepare.Options(range_mb=0.01, shard_mb=0.002))
    message = str(error.value)
    cut = re.fullmatch(
        re.escape(f"{dump}: cut short: its bz2 data ends before the end-of-stream marker, after ")
        + r"([\d,]+) of the ([\d,]+) bytes of its range ([\d,]+)-"
        + re.escape(f"{size:,} were read; the ")
        + r"(\d+) documents prepared from that range are not kept \(a rerun prepares it again\)",
        message,
    )
    assert cut and cut.group(1) == cut.group(2) and int(cut.group(4)) > 0, message
    assert int(cut.group(3).replace(",", "")) == streams.split(dump, 10_000)[-1].start
    finished = sorted(p.name for p in out.glob("*.json"))
    assert finished == [f"00000-{wiki_dump.MULTISTREAM}-r0000{k}.json" for k in range(3)]
    assert not [p for p in out.iterdir() if "-r00003" in p.name]  # no shard of the cut range
    with open(dump, "wb") as f:
        f.write(whole)  # downloaded again
    capsys.readouterr()
    manifest = prepare.prepare(dump, str(out), prepare.Options(range_mb=0.01, shard_mb=0.002))
    assert "3 of 4 input file(s) and stream range(s) finished before" in capsys.readouterr().out
    assert manifest["documents"] == 300


def test_an_index_of_another_dump_stops_the_run_before_it_writes(tmp_path):
    dump = wiki_dump.write_multistream(tmp_path)
    (tmp_path / "other").mkdir()
    wiki_dump.write_multistream(tmp_path / "other", pages_per_stream=7)
    index = str(tmp_path / "other" / wiki_dump.MULTISTREAM_INDEX)
    with pytest.raises(DataError, match=re.escape(f"{index}: the index of another dump than")):
        prepare.prepare(dump, str(tmp_path / "out"), prepare.Options(range_mb=0.01, index=index))
    # Beside the dump, by Wikimedia's name: where it came from is said.
    os.replace(index, tmp_path / wiki_dump.MULTISTREAM_INDEX)
    with pytest.raises(DataError) as error:
        prepare.prepare(dump, str(tmp_path / "out"), RANGES)
    assert str(error.value).endswith(
        "(found beside the dump by its name; move it away to cut the dump at the stream starts "
        "found in it)"
    )
    assert not (tmp_path / "out").exists()
