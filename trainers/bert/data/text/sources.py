"""Documents from the formats corpora come in, streamed with flat memory:

    wiki      MediaWiki XML dumps (.xml, .xml.bz2, multistream too): articles
              of the main namespace; redirects, disambiguation pages and other
              namespaces skipped and counted (`wikitext`)
    parquet   a text column (`text` by default), read in record batches
    jsonl     one JSON object per line (.jsonl, .jsonl.gz), a text column
    text      a plain text file: one document

Each reader yields `Document(text paragraphs)` or a skip reason (a string),
and reports the bytes of input it has read (`.bytes_read`), for throughput.
Errors name the file (and line) and what is wrong.
"""

import bz2
import gzip
import io
import json
import os
import re
import xml.etree.ElementTree as ET

from trainers.bert.errors import DataError

FORMATS = ("wiki", "parquet", "jsonl", "text")
_PARAGRAPH = re.compile(r"\n\s*\n|\n")


def format_of(path):
    name = path.lower()
    if name.endswith((".xml", ".xml.bz2")):
        return "wiki"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        return "jsonl"
    return "text"


class _Counting(io.RawIOBase):
    """A binary file that counts the (compressed) bytes read from it."""

    def __init__(self, f):
        self.f, self.count = f, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.f.readinto(buffer)
        self.count += n or 0
        return n


class Reader:
    """Iterates `(document paragraphs | skip reason)` of one file."""

    def __init__(self, path, fmt=None, text_column="text"):
        self.path, self.format = path, fmt or format_of(path)
        self.text_column = text_column
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
        }[self.format]
        try:
            yield from reader()
        except (EOFError, OSError, ET.ParseError) as error:
            raise DataError(f"{self.path}: corrupt or truncated ({error})") from None

    def _open(self):
        self._raw = _Counting(open(self.path, "rb"))
        buffered = io.BufferedReader(self._raw, 1 << 20)
        if self.path.endswith(".bz2"):
            return bz2.BZ2File(buffered)  # reads every stream of a multistream dump
        if self.path.endswith(".gz"):
            return gzip.GzipFile(fileobj=buffered)
        return buffered

    def _wiki(self):
        from trainers.bert.data.text import wikitext

        with self._open() as f:
            events = ET.iterparse(f, events=("start", "end"))
            _, root = next(events)
            for event, element in events:
                if event != "end" or not element.tag.endswith("}page"):
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
            for number, line in enumerate(io.TextIOWrapper(f, encoding="utf-8"), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
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
