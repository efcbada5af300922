"""A multistream dump cut into ranges of whole streams: the same cuts from
its index and from a scan of the file, ranges that read as the whole file
does, files that are not cut, and an index of another dump refused."""

import bz2
import io
import os
import re

import pytest

from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.text import sources, streams, wiki_sample
from trainers.bert.errors import DataError

RANGE = 10_000  # bytes: a 34 KB dump of 30 streams is cut into 4 ranges


def _offsets(index):
    """The stream offsets the index lists (its first column), in order."""
    lines = bz2.decompress(open(index, "rb").read()).decode().splitlines()
    return sorted({int(line.split(":")[0]) for line in lines})


def _documents(path, ranges=(None,)):
    return [document for part in ranges for document in sources.Reader(path, part=part)]


def test_the_index_and_a_scan_cut_at_the_first_stream_after_each_target(tmp_path):
    path = wiki_dump.write_multistream(tmp_path)
    index = str(tmp_path / wiki_dump.MULTISTREAM_INDEX)
    size = os.path.getsize(path)
    ranges = streams.split(path, RANGE, index)
    assert ranges == streams.split(path, RANGE)  # scanned: the same cuts
    assert len(ranges) == 4 and ranges[0].start == 0 and ranges[-1].end == size
    offsets = _offsets(index)
    for k, (before, after) in enumerate(zip(ranges, ranges[1:]), 1):
        assert before.end == after.start == min(o for o in offsets if o >= k * RANGE)
    # Each range reads as a dump of its own; together they are the whole file.
    assert ranges[0].opening == b"" and ranges[-1].closing == b""
    assert ranges[1].opening.startswith(b"<mediawiki xmlns=")
    assert _documents(path, ranges) == _documents(path)
    assert len(_documents(path, ranges[1:2])) == 90  # its 9 streams of 10 articles


def test_a_stream_is_a_cut_only_where_it_begins_with_a_page(tmp_path):
    path = wiki_dump.write_multistream(tmp_path, index=False)
    with open(path, "rb") as f:
        data = f.read()
        assert streams._first_page_id(f, 0) is None  # the header stream
        second = data.index(b"BZh9", 4)
        assert streams._first_page_id(f, second) == 1
    fake = b"BZh91AY&SY" + bytes(range(256)) * 8  # the magic by chance: no stream
    assert streams._first_page_id(io.BytesIO(fake), 0) is None


@pytest.mark.parametrize(
    "write",
    [
        # Wikimedia's numbered parts: one stream.
        lambda path: wiki_sample.write(path, wiki_dump.articles(300)),
        # Streams cut anywhere in the XML, not at pages.
        lambda path: wiki_sample.write(path, wiki_dump.articles(300), streams=12),
    ],
    ids=["one stream", "streams not at pages"],
)
def test_a_dump_whose_streams_do_not_start_pages_is_one_range(tmp_path, write):
    path = str(tmp_path / wiki_dump.MULTISTREAM)
    write(path)
    size = os.path.getsize(path)
    assert streams.split(path, size // 10) == [streams.Range(0, size)]


def _foreign_index(tmp_path, shift=0, **other):
    """The index of another dump written in its own folder (its offsets
    `shift`ed, as a dump with a larger header has them)."""
    folder = tmp_path / "other"
    folder.mkdir()
    wiki_dump.write_multistream(folder, **other)
    index = folder / wiki_dump.MULTISTREAM_INDEX
    lines = bz2.decompress(index.read_bytes()).decode().splitlines(keepends=True)
    shifted = [f"{int(offset) + shift}:{rest}" for offset, rest in (x.split(":", 1) for x in lines)]
    index.write_bytes(bz2.compress("".join(shifted).encode()))
    return str(index)


@pytest.mark.parametrize(
    "other, says",
    [
        # The same layout, other pages: the first stream holds another page.
        (
            {"first_id": 1001},
            r"it places page 1001 in the stream at byte \d+, and the stream there begins "
            r"with page 1$",
        ),
        # Other streams: offsets that are no stream start here.
        ({"pages_per_stream": 7}, r"it places page \d+ in the stream at byte [\d,]+, and no bz2 "),
        # A bigger dump's offsets, all beyond this one's end.
        ({"shift": 10**9}, r"its first stream offset, 1,000,000,[\d,]+, is beyond the dump's "),
    ],
    ids=["other pages", "other streams", "beyond the end"],
)
def test_an_index_of_another_dump_is_refused_in_one_line(tmp_path, other, says):
    path = wiki_dump.write_multistream(tmp_path)
    index = _foreign_index(tmp_path, **other)
    with pytest.raises(DataError) as error:
        streams.split(path, RANGE, index)
    message = str(error.value)
    assert message.startswith(f"{index}: the index of another dump than {path}: "), message
    assert re.search(says, message) and "\n" not in message, message


def test_a_line_that_is_no_index_line_is_named(tmp_path):
    index = tmp_path / "index.txt.bz2"
    index.write_bytes(bz2.compress(b"180:1:Article 0\n180:2:Article 1\n<html>\n"))
    with pytest.raises(DataError, match=r"index.txt.bz2:3: not a multistream dump index line"):
        streams.read_index(str(index))


def test_a_dump_cut_short_is_noted_and_its_last_range_says_how_much_was_read(tmp_path):
    path = wiki_dump.write_multistream(tmp_path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) * 6 // 10)  # inside a stream
    size = os.path.getsize(path)
    index, said = str(tmp_path / wiki_dump.MULTISTREAM_INDEX), []
    ranges = streams.split(path, RANGE, index, said.append)
    assert said == [
        f"note: {path}: its index places streams up to byte {_offsets(index)[-1]:,}, beyond "
        f"its {size:,} bytes: the dump is cut short (a download not finished?)"
    ]
    last = ranges[-1]
    assert last.end == size and last.closing == b""
    with pytest.raises(sources.Unreadable) as error:
        _documents(path, [last])
    assert str(error.value) == (
        f"{path}: cut short: its bz2 data ends before the end-of-stream marker, after "
        f"{size - last.start:,} of the {size - last.start:,} bytes of its range "
        f"{last.start:,}-{size:,} were read"
    )
    assert _documents(path, ranges[:-1])  # the ranges before the cut read whole


def test_a_corrupt_range_is_named_and_the_others_read(tmp_path):
    path = wiki_dump.write_multistream(tmp_path)
    ranges = streams.split(path, RANGE)
    broken = ranges[1]
    with open(path, "r+b") as f:
        f.seek((broken.start + broken.end) // 2)
        f.write(b"\x00" * 64)
    with pytest.raises(sources.Unreadable) as error:
        _documents(path, [broken])
    assert re.fullmatch(
        re.escape(path) + r": corrupt bz2 data \(Invalid data stream\), after [\d,]+ of the "
        f"{broken.end - broken.start:,} bytes of its range {broken.start:,}-{broken.end:,} "
        "were read",
        str(error.value),
    ), str(error.value)
    assert len(_documents(path, ranges[2:3])) == 90
