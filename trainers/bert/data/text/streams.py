"""A multistream bz2 MediaWiki dump cut into ranges of whole bz2 streams,
so that one big file is prepared by several processes.

Wikimedia's `...-pages-articles-multistream.xml.bz2` is a concatenation of
independent bz2 streams: the first holds the `<mediawiki>` start tag and
`<siteinfo>`, each of the next 100 `<page>` elements, the last the closing
tag. Beside it, `...-multistream-index.txt.bz2` has a line
`OFFSET:PAGE_ID:TITLE` per page, OFFSET being the byte at which the stream
holding the page starts.

`split(path, range_bytes, index)` cuts such a dump into `Range`s of whole
streams: range k starts at the first stream at or after byte
k * range_bytes that begins with a `<page>` element, so every range holds
whole pages, and the ranges depend on the file alone, never on how many
processes read them. The stream starts come from the index (each offset
used is checked: a bz2 stream there whose first page has the index's page
id), or without one from the dump itself: a stream's header (`BZh`, the
level, then the block magic 31 41 59 26 53 59) found with `bytes.find`
from each cut's target byte on, each candidate decompressed to check it
(the magic can occur inside compressed data by chance). Only the bytes
near each cut are read and one bz2 block per cut decompressed (about 6 ms
a cut on a development machine: a 20 GB dump in 64 MB ranges, 2 s); an
index is read whole (about 1.2 s per million lines).

A bz2 file that is one stream (Wikimedia's numbered part files), whose
first stream is not a short header, or whose streams do not begin with a
page is not cut: one range, the whole file.
"""

import bisect
import bz2
import dataclasses
import os
import re
import time

from trainers.bert.errors import DataError

CLOSING = b"</mediawiki>\n"
_BLOCK_MAGIC = b"1AY&SY"  # the bz2 block header's magic, 0x314159265359
_HEADER = 4  # "BZh" and the level digit before a stream's first block magic
_LEVELS = {bytes([level]) for level in b"123456789"}
_HEADER_STREAM_MAX = 1 << 20  # a dump's header stream (start tag, siteinfo) ends within this
_LOOK = 1 << 12  # decompressed bytes that show a stream's first page and its id
_COMPRESSED_BLOCK_MAX = 3 << 19  # a bz2 block (900k at level 9) compresses to less than this
_SCAN = (1 << 16, 1 << 22)  # bytes searched at a time for stream headers: first, most
_CANDIDATES = 3  # streams checked after a cut's target before the file is left uncut
_REPORT_EVERY = 10.0  # seconds between progress lines of a long scan or index read
_ROOT = re.compile(rb"(?:<\?xml[^>]*\?>\s*)?(<mediawiki[\s>][^>]*>|<mediawiki>)")
_PAGE = re.compile(rb"\s*<page[\s>].*?<id>\s*(\d+)\s*</id>", re.S)
_INDEX_LINE = re.compile(rb"^(\d+):(\d+):", re.M)


@dataclasses.dataclass(frozen=True)
class Range:
    """Bytes [start, end) of a dump, whole bz2 streams: read as a dump of
    its own between `opening` (the dump's root start tag; empty for the
    first range, which holds it) and `closing` (empty for the last)."""

    start: int
    end: int
    opening: bytes = b""
    closing: bytes = b""

    def describe(self):
        """The range in progress lines: bytes 128.0-192.0 MB."""
        return f"bytes {self.start / 1e6:.1f}-{self.end / 1e6:.1f} MB"


def index_beside(path):
    """Wikimedia's index beside the dump at `path` (`...-multistream.xml.bz2`
    -> `...-multistream-index.txt.bz2`), or None where there is none."""
    if not path.endswith(".xml.bz2"):
        return None
    index = path[: -len(".xml.bz2")] + "-index.txt.bz2"
    return index if os.path.isfile(index) else None


def split(path, range_bytes, index=None, log=print):
    """The ranges of the bz2 MediaWiki dump at `path`, cut at the stream
    starts at or after each multiple of `range_bytes` (from the `index`
    file, else found in the dump); [Range(0, size)] where it is not cut.
    Raises DataError naming the index when it belongs to another dump."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        opening, first_stream_end = _header(f)
        if index is not None:
            firsts = read_index(index, log)
            starts = _starts_from_index(f, size, path, index, firsts, range_bytes, log)
        elif first_stream_end is not None:
            starts = _starts_found(f, size, path, range_bytes, log)
        else:
            starts = []  # one stream, or a first stream that holds pages: not cut
    if opening is None:
        starts = []  # no <mediawiki> start tag to open the ranges with (--format=wiki)
    cuts = [0, *starts, size]
    return [
        Range(a, b, opening if a else b"", CLOSING if b < size else b"")
        for a, b in zip(cuts, cuts[1:])
    ]


def _header(f):
    """The dump's root start tag from its first stream, and the byte at
    which that stream ends where it is a short header followed by another
    stream (else None: a file of one stream, or whose first holds pages)."""
    decompressor, head, read = bz2.BZ2Decompressor(), b"", 0
    f.seek(0)
    try:
        while not decompressor.eof and read < _HEADER_STREAM_MAX:
            chunk = f.read(1 << 16)
            if not chunk:
                break
            read += len(chunk)
            head += decompressor.decompress(chunk)[: _LOOK * 4 - len(head)]
    except (OSError, EOFError):
        return None, None  # the reader says what is wrong with the file
    root = _ROOT.match(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    opening = root.group(1) if root else None
    if not decompressor.eof:
        return opening, None
    end = read - len(decompressor.unused_data)
    f.seek(end)
    return opening, end if f.read(3) == b"BZh" else None


def _first_page_id(f, offset):
    """The id of the first page of the bz2 stream starting at `offset`, or
    None where no stream starts there or its content does not begin with a
    <page> element."""
    f.seek(offset)
    if not _is_stream_header(f.read(_HEADER + len(_BLOCK_MAGIC))):
        return None
    f.seek(offset)
    decompressor, head, read = bz2.BZ2Decompressor(), b"", 0
    try:
        while len(head) < _LOOK and not decompressor.eof and read < _COMPRESSED_BLOCK_MAX:
            chunk = f.read(1 << 16)
            if not chunk:
                return None  # cut inside the stream's first block
            read += len(chunk)
            head += decompressor.decompress(chunk, _LOOK - len(head))
            while len(head) < _LOOK and not decompressor.eof and not decompressor.needs_input:
                head += decompressor.decompress(b"", _LOOK - len(head))
    except (OSError, EOFError):
        return None  # the magic by chance, inside compressed data
    page = _PAGE.match(head)
    return int(page.group(1)) if page else None


def _is_stream_header(data):
    """Whether `data` is a bz2 stream's header and first block magic."""
    return data[:3] == b"BZh" and data[3:4] in _LEVELS and data[_HEADER:] == _BLOCK_MAGIC


def _stream_starts(f, position, size, path, log):
    """Yields the offsets at or after `position` where a bz2 stream header
    is, in order (candidates: each is checked by decompressing it)."""
    window, most = _SCAN
    last_report = time.perf_counter()
    while position < size:
        f.seek(position)
        data = f.read(window + _HEADER + len(_BLOCK_MAGIC) - 1)
        found = data.find(_BLOCK_MAGIC, _HEADER)
        while found != -1 and found - _HEADER < window:  # beyond: the next window's
            if _is_stream_header(data[found - _HEADER : found + len(_BLOCK_MAGIC)]):
                yield position + found - _HEADER
            found = data.find(_BLOCK_MAGIC, found + 1)
        position += window
        window = min(2 * window, most)  # a stream is near; a long one, read in large chunks
        now = time.perf_counter()
        if now - last_report >= _REPORT_EVERY:
            last_report = now
            log(
                f"  {os.path.basename(path)}: looking for bz2 stream starts, "
                f"{min(position, size) / 1e6:,.0f} of {size / 1e6:,.0f} MB"
            )


def _starts_found(f, size, path, range_bytes, log):
    """The cuts found in the dump: at each multiple of `range_bytes`, the
    first stream after it that begins with a page; none from where the
    first few streams after a target do not (not a dump of a stream per
    hundred pages)."""
    starts, target = [], range_bytes
    while target < size:
        candidates = _stream_starts(f, target, size, path, log)
        found = None
        for _, offset in zip(range(_CANDIDATES), candidates):
            if _first_page_id(f, offset) is not None:
                found = offset
                break
        if found is None:
            break  # the rest of the file is one range
        starts.append(found)
        target = (found // range_bytes + 1) * range_bytes
    return starts


def read_index(path, log=print):
    """{stream offset: id of its first page} of a multistream dump's index
    (`OFFSET:PAGE_ID:TITLE` lines, bz2-compressed or not). Raises DataError
    naming the index and the line where it is not such a file."""
    firsts, tail, lines, start = {}, b"", 0, time.perf_counter()
    last_report = start
    with open(path, "rb") as raw:
        compressed = raw.read(3) == b"BZh"
    try:
        with bz2.open(path, "rb") if compressed else open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                data = tail + chunk
                cut = len(data) if not chunk else data.rfind(b"\n") + 1
                block, tail = data[:cut], data[cut:]
                pairs = _INDEX_LINE.findall(block)
                count = block.count(b"\n") + (not block.endswith(b"\n") and bool(block))
                if len(pairs) != count:
                    raise _not_an_index(path, block, lines)
                lines += count
                # Offsets repeat on consecutive lines: the first line's page per offset.
                for offset, page in dict(reversed(pairs)).items():
                    firsts.setdefault(offset, page)
                if not chunk:
                    break
                now = time.perf_counter()
                if now - last_report >= _REPORT_EVERY:
                    last_report = now
                    log(f"  {os.path.basename(path)}: {lines:,} index lines read")
    except (OSError, EOFError) as error:
        raise DataError(
            f"{path}: not a readable multistream dump index ({error}) after {lines:,} lines"
        ) from None
    if not firsts:
        raise DataError(f"{path}: an empty index (no OFFSET:PAGE_ID:TITLE lines)")
    return {int(offset): int(page) for offset, page in firsts.items()}


def _not_an_index(path, block, lines_before):
    for number, line in enumerate(block.splitlines(), lines_before + 1):
        if not _INDEX_LINE.match(line):
            shown = line[:60].decode("utf-8", "replace")
            return DataError(
                f"{path}:{number}: not a multistream dump index line "
                f"(OFFSET:PAGE_ID:TITLE): {shown!r}"
            )
    return DataError(f"{path}: not a multistream dump index (lines OFFSET:PAGE_ID:TITLE)")


def _starts_from_index(f, size, path, index, firsts, range_bytes, log):
    """The cuts at the index's offsets: the first offset at or after each
    multiple of `range_bytes`. The first offset, the last and each cut must
    start a stream whose first page has the index's id. Offsets beyond the
    file's end say it is cut short (a note): the streams that end before it
    are cut and checked, the last one begun, maybe cut too, is not."""
    offsets = sorted(firsts)
    if offsets[0] >= size:
        raise DataError(
            f"{index}: the index of another dump than {path}: its first stream offset, "
            f"{offsets[0]:,}, is beyond the dump's {size:,} bytes"
        )
    beyond = bisect.bisect_left(offsets, size)
    inside = offsets if beyond == len(offsets) else offsets[: beyond - 1]
    if not inside:
        return []  # the dump is cut inside its first stream of pages: the reader says so
    starts, target = [], range_bytes
    while True:
        k = bisect.bisect_left(inside, target)
        if k == len(inside):
            break
        starts.append(inside[k])
        target = (inside[k] // range_bytes + 1) * range_bytes
    for offset in sorted({inside[0], inside[-1], *starts}):
        found = _first_page_id(f, offset)
        if found != firsts[offset]:
            there = (
                f"the stream there begins with page {found}"
                if found is not None
                else "no bz2 stream of pages starts there"
            )
            raise DataError(
                f"{index}: the index of another dump than {path}: it places page "
                f"{firsts[offset]} in the stream at byte {offset:,}, and {there}"
            )
    if beyond < len(offsets):
        log(
            f"note: {path}: its index places streams up to byte {offsets[-1]:,}, beyond its "
            f"{size:,} bytes: the dump is cut short (a download not finished?)"
        )
    return starts
