"""Documents from the formats corpora come in, streamed with flat memory:

    wiki      MediaWiki XML dumps (multistream too): articles of the main
              namespace; redirects, disambiguation pages and other namespaces
              skipped and counted (`wikitext`)
    parquet   a text column (`text` by default), read in record batches
    jsonl     one JSON object per line, a text column
    text      a plain text file: one document

`detect(path)` decides how a file is read from its content, never its name
(Wikimedia's numbered parts are named `...-pages-articles1.xml-p10p30302.bz2`):
the compression from the magic number (bz2, gzip or none), then the format
from the first few KB of the content: a `<mediawiki` root element is a dump,
`PAR1` Parquet, a JSON object on the first line JSON lines, anything else
text. What would be read as text but plainly is not (other XML, HTML, a JSON
document, binary data, another encoding than UTF-8) is refused, naming the
file and what it looks like; a format given (`detect(path, fmt)`) is read
as such. Where the name says another compression or format, `Kind.note`
says so.

Each reader yields a document (its paragraphs, a list of strings) or a skip
reason (a string), and reports the bytes of input it has read
(`.bytes_read`), for throughput. A reader of a dump's stream range (`part`,
a `streams.Range`) reads only those bytes, as a dump of their own. Errors
name the file (and line) and what is wrong; a file cut short or corrupt
raises `Unreadable`, which says how much of it (or of its range) was read.
"""

import bz2
import codecs
import contextlib
import dataclasses
import gzip
import io
import json
import os
import re
import xml.etree.ElementTree as ET
import zlib
from xml.parsers import expat

from trainers.bert.errors import DataError

FORMATS = ("wiki", "parquet", "jsonl", "text")
HEAD = 1 << 13  # bytes of content (decompressed) that decide a file's format
_BUFFER = 1 << 16  # also how closely `bytes_read` follows the decompressor
_PARAGRAPH = re.compile(r"\n\s*\n|\n")

# Magic numbers: the compressions read, and those only recognised, to refuse.
_COMPRESSIONS = {b"BZh": "bz2", b"\x1f\x8b": "gzip"}
_NOT_READ = {b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}
# What a name says, for the note where the content differs.
_NAMED_COMPRESSIONS = {".bz2": "bz2", ".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
_NAMED_FORMATS = {
    ".xml": "wiki",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",  # dataset hubs name JSON lines .json
    ".txt": "text",
}
_COMPRESSED = {
    None: "uncompressed",
    "bz2": "bz2-compressed",
    "gzip": "gzip-compressed",
    "xz": "xz-compressed",
    "zstd": "zstd-compressed",
    "zip": "a zip archive",
}
_CONTENT = {"wiki": "a MediaWiki dump", "parquet": "Parquet", "jsonl": "JSON lines", "text": "text"}
_NAME = {"wiki": "XML", "parquet": "Parquet", "jsonl": "JSON", "text": "text"}

_DECLARATION = r"(?:<\?xml[^>]*\?>\s*)?"
_MEDIAWIKI = re.compile(_DECLARATION + r"<mediawiki[\s>/]")
_HTML = re.compile(_DECLARATION + r"(?:<!--.*?-->\s*)*(<!doctype\s+html|<html)\b", re.I | re.S)
_XML = re.compile(r"(<\?xml|<!DOCTYPE\s+[\w:.-]+|<!--|<[A-Za-z_][\w:.-]*)(?=[\s>/])")
# The first line of a JSON document that is not one object on one line.
_JSON_DOCUMENT = re.compile(r'\{\s*("|\}|$)|\[\s*(\{|\[|"|\]|$)')
# Text is read with undecodable bytes replaced (a stray bad byte is no
# reason to stop), up to the share the data tool allows (shards/corpus.py).
_MAX_UNDECODABLE = 0.001
# Expat's errors where the document ended with elements still open.
_XML_CUT_SHORT = {
    expat.errors.codes[e]
    for e in (expat.errors.XML_ERROR_NO_ELEMENTS, expat.errors.XML_ERROR_UNCLOSED_TOKEN)
}
_READ_ERRORS = (EOFError, OSError, zlib.error, ET.ParseError)


class Unreadable(DataError):
    """A file cut short or corrupt; the message says how much was read."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a file is read: `format` (one of FORMATS) and `compression`
    ("bz2", "gzip" or None), from its content; `note`: a line saying where
    its name says otherwise, or None."""

    format: str
    compression: str | None = None
    note: str | None = None


def detect(path, fmt=None):
    """The Kind of the file at `path`, from its magic number and its first
    HEAD bytes of content (a bz2 file: its first block decompressed, never
    the whole file); `fmt` forces the format. Raises DataError naming the
    file when its compression is one not read, or when it would be read as
    text but plainly is not text."""
    with open(path, "rb") as f:
        magic = f.read(8)
    unread = _starting(magic, _NOT_READ)
    if unread:
        raise DataError(
            f"{path}: {_COMPRESSED[unread]}, which this tool does not read; decompress it "
            "(or compress it with bz2 or gzip)"
        )
    compression = _starting(magic, _COMPRESSIONS)
    head = _head(path, compression)
    found = fmt or _format(path, head, compression)
    if found == "parquet" and compression:
        raise DataError(f"{path}: Parquet inside {compression} compression; decompress it first")
    return Kind(found, compression, _note(path, compression, None if fmt else found))


def describe(kind):
    """What a file of `kind` is, for messages: "a MediaWiki dump,
    bz2-compressed", "gzip-compressed text"."""
    if kind.format == "text":
        return f"{_COMPRESSED[kind.compression]} text"
    what = {"wiki": "a MediaWiki dump"}.get(kind.format, _CONTENT[kind.format])
    return what + (f", {_COMPRESSED[kind.compression]}" if kind.compression else "")


def _starting(data, magics):
    return next((name for magic, name in magics.items() if data.startswith(magic)), None)


@contextlib.contextmanager
def _opened(path, compression, part=None):
    """Yields the file's content (decompressed; of a `part`: its bytes
    alone) and the counter of the bytes taken from the file."""
    raw = _Counting(open(path, "rb", buffering=0), part)
    with io.BufferedReader(raw, _BUFFER) as buffered:
        if compression == "bz2":
            content = io.BufferedReader(_Bz2Streams(buffered), _BUFFER)
        elif compression == "gzip":
            content = gzip.GzipFile(fileobj=buffered)
        else:
            content = buffered
        with content:
            yield content, raw


def _head(path, compression):
    with _opened(path, compression) as (content, raw):
        head = b""
        try:
            while len(head) < HEAD:
                chunk = content.read(HEAD - len(head))
                if not chunk:
                    break
                head += chunk
        except _READ_ERRORS as error:
            _raise_unreadable(path, error, compression, raw.count)
    return head


def _format(path, head, compression):
    """The format `head`, a file's first bytes of content, shows; DataError
    where it would be text but plainly is not."""
    if head.startswith(b"PAR1"):
        return "parquet"
    whole = len(head) < HEAD  # the file ends within the head
    seen = f"its first {len(head):,} bytes" + (" decompressed" if compression else "")
    if b"\x00" in head:
        raise _not_text(path, f"binary data (NUL bytes in {seen})", "convert UTF-16 text to UTF-8")
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=whole)
    start = text.lstrip("\ufeff \t\r\n")
    if _MEDIAWIKI.match(start):
        return "wiki"
    undecodable = text.count("\ufffd") - head.decode("utf-8", "ignore").count("\ufffd")
    if undecodable > max(1, _MAX_UNDECODABLE * len(head)):
        raise _not_text(
            path,
            f"text in another encoding ({undecodable} undecodable bytes in {seen})",
            "convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            not_what="UTF-8 text",
        )
    html = _HTML.match(start)
    if html:
        raise _not_text(path, f"HTML (starts with {html.group(1)!r})", "extract its text first")
    markup = _XML.match(start)
    if markup:
        raise _not_text(
            path,
            f"XML (starts with {markup.group(1)!r})",
            flag="--format=wiki reads MediaWiki dumps",
        )
    if start.startswith(("{", "[")):
        return _json_format(path, start, whole)
    return "text"


def _json_format(path, start, whole):
    """JSON lines when the first line holds a JSON object (or begins one and
    is longer than the head); a JSON document otherwise, refused; text where
    the line is no JSON at all ("[1] Introduction")."""
    line, newline, _ = start.partition("\n")
    line = line.strip()
    if not newline and not whole:  # the first line goes on beyond the head
        if line.startswith("{"):
            return "jsonl"
        is_json = _JSON_DOCUMENT.match(line)
    else:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            return "jsonl"
        is_json = record is not None or _JSON_DOCUMENT.match(line)
    if not is_json:
        return "text"
    raise _not_text(
        path,
        f"a JSON document (starts with {line[:20]!r})",
        flag="--format=jsonl reads JSON lines",
        not_what="JSON lines (an object a line) or plain text",
    )


class NotText(DataError):
    """A file that would be read as text but plainly is not: `looks_like`
    says what it is; `advice` how to make it text, where that does not
    depend on the tool (None: the tool's own flags)."""

    def __init__(self, message, looks_like, advice):
        super().__init__(message)
        self.looks_like, self.advice = looks_like, advice


def _not_text(path, looks_like, advice=None, flag=None, not_what="plain text"):
    said = "; ".join(a for a in (advice, flag) if a)
    return NotText(
        f"{path}: looks like {looks_like}, not {not_what}; {said}, --format=text forces plain text",
        looks_like,
        advice,
    )


def _note(path, compression, found):
    """The line for a file whose name says another compression or format
    (`found`: the format from the content; None: given, not noted)."""
    name = os.path.basename(path).lower()
    stem, suffix = os.path.splitext(name)
    named_compression = _NAMED_COMPRESSIONS.get(suffix)
    named_format = _NAMED_FORMATS.get(os.path.splitext(stem if named_compression else name)[1])
    content, named = [], []
    if named_compression != compression:
        content.append(_COMPRESSED[compression])
        named.append(_COMPRESSED[named_compression])
    if found and named_format and named_format != found:
        content.append(_CONTENT[found])
        named.append(_NAME[named_format])
    if not content:
        return None
    return (
        f"{path}: its content is {' and '.join(content)}, its name says {' and '.join(named)}; "
        "read by its content"
    )


def _raise_unreadable(path, error, compression, read, part=None):
    """Raises `Unreadable` for a read error that shows the file cut short
    or corrupt, naming how much of it (of its `part`) was read; re-raises
    any other."""
    data = f"{compression} data" if compression else "data"
    if isinstance(error, EOFError):
        problem = f"cut short: its {data} ends before the end-of-stream marker"
    elif isinstance(error, ET.ParseError):
        if error.code in _XML_CUT_SHORT:
            problem = f"cut short: its XML ends inside an element ({error})"
        else:
            problem = f"not well-formed XML ({error})"
    elif isinstance(error, zlib.error) or (compression and error.errno is None):
        problem = f"corrupt {data} ({error})"  # bz2's "Invalid data stream", gzip's CRC check
    else:
        raise error
    raise Unreadable(f"{path}: {problem}, after {_how_much(path, read, part)} were read") from None


def _how_much(path, read, part):
    """How much was read, for messages: "1,234 of its 5,678 bytes"; of a
    part, "1,234 of the 5,678 bytes of its range 100-5,778"."""
    if part is None:
        return f"{read:,} of its {os.path.getsize(path):,} bytes"
    size = part.end - part.start
    return f"{read:,} of the {size:,} bytes of its range {part.start:,}-{part.end:,}"


class _Bz2Streams(io.RawIOBase):
    """The content of the bz2 streams one after another in the binary file
    `f` (a multistream dump, or a range of it), each decompressed on its
    own. Where Python's BZ2File takes a stream that does not decompress for
    trailing data and ends without an error (the pages after it lost), this
    raises OSError; data that ends inside a stream raises EOFError."""

    def __init__(self, f):
        self.f, self.decompressor = f, bz2.BZ2Decompressor()

    def readable(self):
        return True

    def readinto(self, buffer):
        while True:
            if self.decompressor.eof:  # the next stream, if any
                data = self.decompressor.unused_data or self.f.read(_BUFFER)
                if not data:
                    return 0
                self.decompressor = bz2.BZ2Decompressor()
            elif self.decompressor.needs_input:
                data = self.f.read(_BUFFER)
                if not data:
                    raise EOFError("the data ends inside a bz2 stream")
            else:
                data = b""  # output held back by the last call's limit
            out = self.decompressor.decompress(data, len(buffer))
            if out:
                buffer[: len(out)] = out
                return len(out)


class _Counting(io.RawIOBase):
    """A binary file that counts the (compressed) bytes read from it; of a
    `part` (its `start` and `end`), only those bytes are read."""

    def __init__(self, f, part=None):
        self.f, self.count = f, 0
        self.left = None
        if part is not None:
            f.seek(part.start)
            self.left = part.end - part.start

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.left is not None:
            buffer = memoryview(buffer)[: self.left]
        n = self.f.readinto(buffer)
        self.count += n or 0
        if self.left is not None:
            self.left -= n or 0
        return n

    def close(self):
        self.f.close()
        super().close()


class Reader:
    """Iterates `(document paragraphs | skip reason)` of one file, read as
    `kind` says (default: as `detect` finds it); of a multistream dump's
    `part` (a `streams.Range`), that range's pages alone."""

    def __init__(self, path, kind=None, text_column="text", part=None):
        self.path, self.kind = path, kind or detect(path)
        self.text_column, self.part = text_column, part
        self._raw, self._parquet_read = None, 0

    @property
    def bytes_read(self):
        return self._raw.count if self._raw else self._parquet_read

    def __iter__(self):
        reader = {
            "wiki": self._wiki,
            "parquet": self._parquet,
            "jsonl": self._jsonl,
            "text": self._text,
        }[self.kind.format]
        try:
            yield from reader()
        except _READ_ERRORS as error:
            _raise_unreadable(self.path, error, self.kind.compression, self.bytes_read, self.part)
        part = self.part
        total = os.path.getsize(self.path) if part is None else part.end - part.start
        if self._raw is not None and self.bytes_read < total:
            # gzip takes what follows its stream for trailing data and ends.
            raise Unreadable(
                f"{self.path}: corrupt {self.kind.compression} data: reading ended after "
                f"{_how_much(self.path, self.bytes_read, part)}"
            )

    @contextlib.contextmanager
    def _open(self):
        with _opened(self.path, self.kind.compression, self.part) as (content, self._raw):
            yield content

    def _wiki(self):
        from trainers.bert.data.text import wikitext

        with self._open() as f:
            if self.part is not None:  # its pages between the dump's root tags
                f = _Framed(self.part.opening, f, self.part.closing)
            events = ET.iterparse(f, events=("start", "end"))
            _, root = next(events)
            if _local(root.tag) != "mediawiki":  # a format given for other XML
                raise DataError(
                    f"{self.path}: its root element is <{_local(root.tag)}>, not a MediaWiki "
                    "dump's <mediawiki>"
                )
            for event, element in events:
                if event != "end" or _local(element.tag) != "page":
                    continue
                yield _page(element, wikitext)
                root.clear()  # flat memory: pages done are dropped

    def _parquet(self):
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path)
        except Exception as error:  # pyarrow's errors have no common base
            raise DataError(f"{self.path}: not a Parquet file ({error})") from None
        names = parquet.schema_arrow.names
        if self.text_column not in names:
            raise DataError(
                f"{self.path}: no column {self.text_column!r} (it has {names}); set --text_column"
            )
        size, groups = os.path.getsize(self.path), parquet.num_row_groups
        for group in range(groups):  # one row group in memory at a time
            column = parquet.read_row_group(group, columns=[self.text_column]).column(0)
            for text in column.to_pylist():
                yield _split(text) if text else "empty"
            self._parquet_read = size * (group + 1) // groups

    def _jsonl(self):
        with self._open() as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError as error:
                    raise DataError(f"{self.path}:{number}: not UTF-8 ({error.reason})") from None
                except json.JSONDecodeError as error:
                    raise DataError(f"{self.path}:{number}: not JSON ({error.msg})") from None
                if not isinstance(record, dict) or self.text_column not in record:
                    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                    raise DataError(
                        f"{self.path}:{number}: no {self.text_column!r} field (it has {keys}); "
                        "set --text_column"
                    )
                text = record[self.text_column]
                yield _split(text) if isinstance(text, str) and text.strip() else "empty"

    def _text(self):
        with self._open() as f:
            text = io.TextIOWrapper(f, encoding="utf-8", errors="replace").read()
        yield _split(text) if text.strip() else "empty"


class _Framed(io.RawIOBase):
    """The bytes of `opening`, then of the binary file `content`, then of
    `closing`."""

    def __init__(self, opening, content, closing):
        self.parts = [io.BytesIO(opening), content, io.BytesIO(closing)]

    def readable(self):
        return True

    def readinto(self, buffer):
        while self.parts:
            n = self.parts[0].readinto(buffer)
            if n:
                return n
            self.parts.pop(0)
        return 0


def _local(tag):
    """An XML tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _split(text):
    """Paragraphs of plain text: lines, white space collapsed."""
    return [p for p in (" ".join(part.split()) for part in _PARAGRAPH.split(text)) if p]


def _page(element, wikitext):
    """A page element -> its paragraphs, or why it is skipped."""

    def child(node, name):
        return next((c for c in node if c.tag.rsplit("}", 1)[-1] == name), None)

    namespace = child(element, "ns")
    if namespace is not None and (namespace.text or "0").strip() != "0":
        return "namespace"
    if child(element, "redirect") is not None:
        return "redirect"
    revision = child(element, "revision")
    text = child(revision, "text") if revision is not None else None
    markup = (text.text or "") if text is not None else ""
    if markup.lstrip().lower().startswith("#redirect"):
        return "redirect"
    code = wikitext.parse(markup)
    title = child(element, "title")
    if wikitext.is_disambiguation(title.text or "" if title is not None else "", code):
        return "disambiguation"
    found = wikitext.paragraphs(code)
    return found or "empty"
