"""The corpus readers: MediaWiki dumps (plain, bz2, gzip, multistream),
Parquet, JSONL, plain text; each file read as its content says, whatever its
name; and the errors that name file and problem."""

import bz2
import gzip
import json
import random
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.text import sources
from trainers.bert.errors import DataError

PART_FILE = wiki_dump.PART_FILE


@pytest.mark.parametrize(
    "name, streams",
    [("dump.xml", 1), ("dump.xml.bz2", 1), ("dump.xml.bz2", 3), ("dump.xml.gz", 1), (PART_FILE, 2)],
)
def test_dump_articles_and_skips(tmp_path, name, streams):
    path = wiki_dump.write(str(tmp_path / name), streams=streams)
    reader = sources.Reader(path)
    assert reader.kind.format == "wiki" and reader.kind.note is None
    found = list(reader)
    assert found[1:] == ["redirect", "namespace", "disambiguation"]
    assert found[0][0].startswith("Alan Turing was an English maths scholar")
    assert reader.bytes_read == (tmp_path / name).stat().st_size


@pytest.mark.parametrize(
    "name, compression, says",
    [
        ("dump.xml", "bz2", "its content is bz2-compressed, its name says uncompressed"),
        ("dump.xml.bz2", "gzip", "its content is gzip-compressed, its name says bz2-compressed"),
        ("dump.xml.bz2", "none", "its content is uncompressed, its name says bz2-compressed"),
        ("dump.txt", "none", "its content is a MediaWiki dump, its name says text"),
        (
            "dump.jsonl.gz",
            "bz2",
            "its content is bz2-compressed and a MediaWiki dump, "
            "its name says gzip-compressed and JSON",
        ),
    ],
)
def test_a_name_that_says_otherwise_is_read_by_the_content_with_a_note(
    tmp_path, name, compression, says
):
    path = wiki_dump.write(str(tmp_path / name), compression=compression)
    kind = sources.detect(path)
    assert kind.format == "wiki" and kind.note == f"{path}: {says}; read by its content"
    assert list(sources.Reader(path, kind))[0][0].startswith("Alan Turing was")


def test_the_format_given_is_read_and_only_the_compression_noted(tmp_path):
    path = wiki_dump.write(str(tmp_path / "dump.jsonl"), compression="gzip")
    kind = sources.detect(path, "text")  # markup and all, as asked
    assert kind == sources.Kind("text", "gzip", kind.note)
    assert "its content is gzip-compressed, its name says uncompressed" in kind.note
    assert list(sources.Reader(path, kind))[0][0].startswith("<mediawiki")


@pytest.mark.parametrize(
    "name, content, fmt",
    [
        ("declared.xml", b'\xef\xbb\xbf<?xml version="1.0"?>\n<mediawiki>\n</mediawiki>\n', "wiki"),
        ("records.json", b'{"text": "One."}\n{"text": "Two."}\n', "jsonl"),
        # A first line longer than the few KB looked at.
        ("part-00000", json.dumps({"text": "Long. " * 3000}).encode() + b"\n", "jsonl"),
        ("notes", b"[1] Introduction\nThe text begins.\n", "text"),
        ("tag.txt", b"<3 this book\n", "text"),
        ("empty.txt", b"", "text"),
    ],
)
def test_the_format_comes_from_the_content(tmp_path, name, content, fmt):
    (tmp_path / name).write_bytes(content)
    assert sources.detect(str(tmp_path / name)) == sources.Kind(fmt)


def test_a_stray_undecodable_byte_in_text_is_replaced(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"Plain text. " * 1000 + b"Caf\xe9.\n")
    assert list(sources.Reader(str(tmp_path / "a.txt")))[0][0].endswith("Caf\ufffd.")


@pytest.mark.parametrize(
    "name, content, says",
    [
        (
            "corpus.xml",
            b'<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>\n',
            "looks like XML (starts with '<?xml'), not plain text; --format=wiki reads "
            "MediaWiki dumps, --format=text forces plain text",
        ),
        (
            "page.html",
            b"<!DOCTYPE html>\n<html><body><p>Hi.</p></body></html>\n",
            "looks like HTML (starts with '<!DOCTYPE html'), not plain text; extract its text "
            "first, --format=text forces plain text",
        ),
        (
            "index.txt.gz",
            gzip.compress(b"\n<html lang='en'><p>Hi.</p></html>\n", mtime=0),
            "looks like HTML (starts with '<html'), not plain text",
        ),
        (
            "data.json",
            b'{\n  "text": "One."\n}\n',
            "looks like a JSON document (starts with '{'), not JSON lines (an object a line) "
            "or plain text; --format=jsonl reads JSON lines, --format=text forces plain text",
        ),
        (
            "rows.json",
            b'[{"text": "One."}, {"text": "Two."}]\n',
            """looks like a JSON document (starts with '[{"text": "One."}, {'), not JSON""",
        ),
        (
            "image.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "looks like binary data (NUL bytes in its first 16 bytes), not plain text; "
            "convert UTF-16 text to UTF-8, --format=text forces plain text",
        ),
        (
            "latin1.txt",
            "Café crème brûlée. ".encode("latin-1") * 100,
            "looks like text in another encoding (400 undecodable bytes in its first 1,900 "
            "bytes), not UTF-8 text; convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8), "
            "--format=text forces plain text",
        ),
        (
            "corpus.txt.xz",
            b"\xfd7zXZ\x00\x00\x04",
            "xz-compressed, which this tool does not read; decompress it "
            "(or compress it with bz2 or gzip)",
        ),
        (
            "books.parquet.gz",
            gzip.compress(b"PAR1 and the rest", mtime=0),
            "Parquet inside gzip compression; decompress it first",
        ),
    ],
)
def test_text_that_plainly_is_not_text_is_refused(tmp_path, name, content, says):
    path = str(tmp_path / name)
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as error:
        sources.detect(path)
    assert str(error.value).startswith(f"{path}: {says}"), str(error.value)
    if "--format=text" in says:
        assert sources.detect(path, "text").format == "text"


def test_a_format_given_for_other_xml_names_its_root(tmp_path):
    (tmp_path / "feed.xml").write_text('<?xml version="1.0"?>\n<rss><item/></rss>\n')
    path = str(tmp_path / "feed.xml")
    with pytest.raises(DataError, match=r"feed.xml: its root element is <rss>, not a MediaWiki"):
        list(sources.Reader(path, sources.detect(path, "wiki")))


def _cut(path, keep=0.6):
    """Cuts the file at `path` to its first `keep` share of bytes, as an
    interrupted download leaves it; returns its new size."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return int(len(data) * keep)


def _corrupt(path):
    """Overwrites bytes in the middle of the file; returns its size."""
    with open(path, "r+b") as f:
        data = f.read()
        f.seek(len(data) * 2 // 3)
        f.write(b"\x00" * 64)
    return len(data)


@pytest.mark.parametrize(
    "name, streams, damage, says",
    [
        (PART_FILE, 4, _cut, "cut short: its bz2 data ends before the end-of-stream marker"),
        ("dump.xml.gz", 1, _cut, "cut short: its gzip data ends before the end-of-stream marker"),
        ("dump.xml", 1, _cut, r"cut short: its XML ends inside an element \(.*line \d+.*\)"),
        # One bz2 stream cut: the first block, which decides the format, is lost.
        ("dump.xml.bz2", 1, _cut, "cut short: its bz2 data ends before the end-of-stream marker"),
        ("dump.xml.bz2", 1, _corrupt, r"corrupt bz2 data \(Invalid data stream\)"),
        # A later stream: not taken for trailing data, as Python's BZ2File does.
        ("dump.xml.bz2", 4, _corrupt, r"corrupt bz2 data \(Invalid data stream\)"),
    ],
)
def test_a_file_cut_short_or_corrupt_says_how_much_was_read(tmp_path, name, streams, damage, says):
    path = wiki_dump.write(str(tmp_path / name), wiki_dump.articles(60), streams)
    size = damage(path)
    found = []
    with pytest.raises(sources.Unreadable) as error:
        for document in sources.Reader(path):
            found.append(document)
    message = str(error.value)
    read = re.fullmatch(
        re.escape(path) + f": {says}, after ([\\d,]+) of its {size:,} bytes were read", message
    )
    assert read, message
    assert 0 < int(read.group(1).replace(",", "")) <= size
    if damage is _cut and streams > 1:  # the streams before the cut are read
        assert 0 < len(found) < 60


def test_a_later_stream_that_does_not_start_is_corrupt(tmp_path):
    # Python's BZ2File ends there without an error, and text has no end tag
    # to miss: each stream is decompressed on its own, its errors raised.
    rng = random.Random(0)
    chunks = [" ".join(f"{rng.getrandbits(64):x}" for _ in range(6000)) for _ in range(4)]
    streams = [bz2.compress(chunk.encode(), 9) for chunk in chunks]
    third = len(streams[0]) + len(streams[1])
    data = b"".join(streams)
    (tmp_path / "words.txt.bz2").write_bytes(data[: third + 4] + bytes(6) + data[third + 10 :])
    path = str(tmp_path / "words.txt.bz2")
    with pytest.raises(sources.Unreadable) as error:
        list(sources.Reader(path))
    read = re.fullmatch(
        re.escape(path) + r": corrupt bz2 data \(Invalid data stream\), after ([\d,]+) of its "
        f"{len(data):,} bytes were read",
        str(error.value),
    )
    assert read and int(read.group(1).replace(",", "")) < len(data), str(error.value)


def test_parquet_and_jsonl_columns(tmp_path):
    table = pa.table({"id": [1, 2, 3], "text": ["First line.\n\nSecond one.", "", "Third."]})
    pq.write_table(table, tmp_path / "part-0")  # no extension: the content says Parquet
    assert sources.detect(str(tmp_path / "part-0")) == sources.Kind("parquet")
    assert list(sources.Reader(str(tmp_path / "part-0"))) == [
        ["First line.", "Second one."],
        "empty",
        ["Third."],
    ]
    with pytest.raises(DataError, match=r"part-0: no column 'content' \(it has \['id', 'text'\]\)"):
        list(sources.Reader(str(tmp_path / "part-0"), text_column="content"))
    with gzip.open(tmp_path / "part.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "A line. Another."}) + "\n" + json.dumps({"body": "x"}) + "\n")
    reader = iter(sources.Reader(str(tmp_path / "part.jsonl.gz")))
    assert next(reader) == ["A line. Another."]
    with pytest.raises(DataError, match=r"part.jsonl.gz:2: no 'text' field \(it has \['body'\]\)"):
        next(reader)


def test_a_jsonl_line_not_utf8_is_named(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"text": "One."}\n\n{"text": "Caf\xe9."}\n')
    with pytest.raises(DataError, match=r"a.jsonl:3: not UTF-8 \(invalid continuation byte\)"):
        list(sources.Reader(str(tmp_path / "a.jsonl")))


def test_plain_text_is_one_document(tmp_path):
    (tmp_path / "book.txt").write_text("Chapter one.\nIt was   late.\n\nThe end.\n")
    assert list(sources.Reader(str(tmp_path / "book.txt"))) == [
        ["Chapter one.", "It was late.", "The end."]
    ]
    (tmp_path / "book.txt.bz2").write_bytes(bz2.compress(b"Chapter one.\n"))
    assert list(sources.Reader(str(tmp_path / "book.txt.bz2"))) == [["Chapter one."]]
