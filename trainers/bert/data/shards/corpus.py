"""Documents from text: files in the BERT format (one sentence per line, a
blank line between documents; longer lines are split into sentences), or the
built-in corpus, CPython 3.11's English help text, kept with this code.

`pydoc_topics.json.gz` beside this file holds the help topics of CPython
3.11.7's `pydoc_data.topics` (a JSON object, topic -> text), copyright the
Python Software Foundation and licensed under the PSF License Agreement
(https://docs.python.org/3/license.html). It is kept here, not read from the
running Python, because the topics differ between Python versions and the
built-in data must be the same on every machine; `builtin.regenerate` makes
it again.
"""

import functools
import gzip
import json
import os
import re

from trainers.bert.data.patterns import match_files
from trainers.bert.data.text import sources
from trainers.bert.errors import DataError

# A sentence ends at . ! or ? followed by space and an upper-case letter, a
# quote, a bracket or a digit. Good enough for prose; code lines stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
_RULE = re.compile(r"^[\s*=\-~^#+]*$")  # reStructuredText underlines

BUILTIN = "builtin:pydoc"
# Every HELDOUT_EVERY-th help topic is held out for evaluation.
BUILTIN_TRAIN = "builtin:pydoc/train"
BUILTIN_HELDOUT = "builtin:pydoc/heldout"
HELDOUT_EVERY = 5
_BUILTINS = {BUILTIN: None, BUILTIN_TRAIN: "train", BUILTIN_HELDOUT: "heldout"}
BUILTIN_TOPICS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pydoc_topics.json.gz")


def split_sentences(text):
    text = " ".join(text.split())
    return [s for s in _SENTENCE_END.split(text) if s]


def input_files(patterns):
    """Comma-separated globs (or a list of them) -> files; the built-in
    corpus's names pass through. A pattern that matches nothing raises
    DataError naming it (and --input_file)."""
    try:
        return match_files(patterns, keep=tuple(_BUILTINS))
    except DataError as error:
        raise DataError(f"--input_file: {error}") from None


# Bytes read to tell an empty input file (blank lines only) from one with text.
_HEAD = 1 << 16
# What `tools/prepare_corpus.py` turns into this tool's text.
_PREPARE = (
    "tools/prepare_corpus.py makes plain text (one sentence a line, a blank line between "
    "documents) from it"
)


def empty_note(empty, files):
    """The line naming the input files that hold no text (`check_text`)."""
    return (
        f"note: {len(empty)} of the {len(files)} input files hold no text and add "
        f"nothing: {describe(empty)}"
    )


def check_text(files):
    """Before any work: each input file is plain UTF-8 text, as its content
    shows (`text.sources.detect`, which the corpus tool shares). Raises
    DataError naming a folder, a compressed file, a dump, JSON or Parquet
    (each would be read as noise), binary data or another encoding. A
    stray undecodable byte is read on, replaced. Returns the files that hold
    no text (empty, or blank lines only), which add nothing."""
    empty = []
    for name in files:
        if name in _BUILTINS:
            continue
        if os.path.isdir(name):
            raise DataError(
                f"--input_file: {name!r} is a folder; give its text files, e.g. "
                f"--input_file='{os.path.join(name, '*.txt')}'"
            )
        try:
            kind = sources.detect(name)
        except sources.NotText as error:
            raise DataError(
                f"{name!r} looks like {error.looks_like}, not plain text: "
                f"{error.advice or _PREPARE}"
            ) from None
        if kind.format != "text":
            raise DataError(f"{name!r} is {sources.describe(kind)}, not plain text: {_PREPARE}")
        if kind.compression:
            raise DataError(
                f"{name!r} is {sources.describe(kind)}, not plain text: decompress it first"
            )
        with open(name, "rb") as f:
            head = f.read(_HEAD)
            if not f.read(1) and not head.strip():
                empty.append(name)
    return empty


def describe(files):
    """The input's name for messages: the file, or the first few files."""
    files = list(files)
    if len(files) == 1:
        return repr(files[0])
    shown = ", ".join(repr(f) for f in files[:3])
    return f"{len(files)} files ({shown}{', ...' if len(files) > 3 else ''})"


class Documents:
    """The documents (lists of sentences) of `files`, one at a time, in file
    order: an iterator, read once, that names its input (`.files`) so errors
    about the text can name it."""

    def __init__(self, files):
        self.files = list(files)
        self._documents = (d for name in self.files for d in _documents(name))

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._documents)


def read_documents(files):
    """-> `Documents`: the documents of `files`, one pass."""
    return Documents(files)


def _documents(name):
    if name in _BUILTINS:
        return builtin_documents(_BUILTINS[name])
    return _file_documents(name)


def _file_documents(name):
    split = split_sentences if not segmented(name) else lambda line: [" ".join(line.split())]
    document = []
    with open(name, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                if document:
                    yield document
                document = []
                continue
            document.extend(split(line))
    if document:
        yield document


def segmented(name):
    """Whether `name` is text the corpus tool made (`tools/prepare_corpus.py`:
    listed in the manifest beside it): one sentence a line already, as its
    segmenter split them, so its lines are not split again (the regular
    expression would cut "Dr. Smith" where sentencex did not)."""
    folder, file = os.path.split(os.path.abspath(name))
    manifest = _corpus_manifest(folder)
    return manifest is not None and file in manifest.get("shards", ())


@functools.cache
def _corpus_manifest(folder):
    path = os.path.join(folder, "manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "segmenter" in manifest else None


@functools.cache
def builtin_topics():
    """The kept help topics (topic -> text) of CPython 3.11's `pydoc_data`."""
    with gzip.open(BUILTIN_TOPICS, "rt", encoding="utf-8") as f:
        return json.load(f)


def builtin_documents(split=None):
    """One document per help topic of the kept `pydoc_data.topics` (about
    0.5 MB of English prose and code). `split`: None for all topics, "train"
    or "heldout" (every HELDOUT_EVERY-th topic)."""
    topics = builtin_topics()
    for index, key in enumerate(sorted(topics)):
        if split is not None and (index % HELDOUT_EVERY == HELDOUT_EVERY - 1) != (
            split == "heldout"
        ):
            continue
        document = topic_sentences(topics[key])
        if len(document) > 1:
            yield document


def topic_sentences(text):
    """The sentences of one help topic's text, paragraph by paragraph,
    without reStructuredText underlines."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [ln for ln in paragraph.splitlines() if not _RULE.match(ln)]
        if lines:
            sentences.extend(split_sentences(" ".join(lines)))
    return sentences
