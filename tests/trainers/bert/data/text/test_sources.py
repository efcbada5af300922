"""The corpus readers: MediaWiki dumps (plain, bz2, multistream), Parquet,
JSONL, plain text; and the errors that name file and problem."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.text import sources
from trainers.bert.errors import DataError


@pytest.mark.parametrize(
    "name, streams", [("dump.xml", 1), ("dump.xml.bz2", 1), ("dump.xml.bz2", 3)]
)
def test_dump_articles_and_skips(tmp_path, name, streams):
    path = wiki_dump.write(str(tmp_path / name), streams=streams)
    reader = sources.Reader(path)
    found = list(reader)
    assert found[1:] == ["redirect", "namespace", "disambiguation"]
    assert found[0][0].startswith("Alan Turing was an English maths scholar")
    assert reader.bytes_read == (tmp_path / name).stat().st_size


def test_a_truncated_dump_is_named(tmp_path):
    path = wiki_dump.write(str(tmp_path / "dump.xml.bz2"))
    data = (tmp_path / "dump.xml.bz2").read_bytes()
    (tmp_path / "dump.xml.bz2").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"{path}: corrupt or truncated"):
        list(sources.Reader(path))


def test_parquet_and_jsonl_columns(tmp_path):
    table = pa.table({"id": [1, 2, 3], "text": ["First line.\n\nSecond one.", "", "Third."]})
    pq.write_table(table, tmp_path / "part.parquet")
    assert list(sources.Reader(str(tmp_path / "part.parquet"))) == [
        ["First line.", "Second one."],
        "empty",
        ["Third."],
    ]
    with pytest.raises(
        DataError, match=r"part.parquet: no column 'content' \(it has \['id', 'text'\]\)"
    ):
        list(sources.Reader(str(tmp_path / "part.parquet"), text_column="content"))
    with gzip.open(tmp_path / "part.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "A line. Another."}) + "\n" + json.dumps({"body": "x"}) + "\n")
    reader = iter(sources.Reader(str(tmp_path / "part.jsonl.gz")))
    assert next(reader) == ["A line. Another."]
    with pytest.raises(DataError, match=r"part.jsonl.gz:2: no 'text' field \(it has \['body'\]\)"):
        next(reader)


def test_plain_text_is_one_document(tmp_path):
    (tmp_path / "book.txt").write_text("Chapter one.\nIt was   late.\n\nThe end.\n")
    assert list(sources.Reader(str(tmp_path / "book.txt"))) == [
        ["Chapter one.", "It was late.", "The end."]
    ]
