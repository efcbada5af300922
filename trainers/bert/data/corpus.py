"""Documents from text: files in the BERT format (one sentence per line, a
blank line between documents; longer lines are split into sentences), or the
built-in corpus, the English help text that ships with CPython."""

import re

from trainers.bert.data.patterns import match_files

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


def split_sentences(text):
    text = " ".join(text.split())
    return [s for s in _SENTENCE_END.split(text) if s]


def input_files(patterns):
    """Comma-separated globs (or a list of them) -> files; the built-in
    corpus's names pass through."""
    return match_files(patterns, keep=tuple(_BUILTINS))


def read_documents(files):
    """Yields documents (lists of sentences) one at a time, in file order."""
    for name in files:
        if name in _BUILTINS:
            yield from builtin_documents(_BUILTINS[name])
        else:
            yield from _file_documents(name)


def _file_documents(name):
    document = []
    with open(name, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                if document:
                    yield document
                document = []
                continue
            document.extend(split_sentences(line))
    if document:
        yield document


def builtin_documents(split=None):
    """One document per help topic of `pydoc_data.topics` (about 0.5 MB of
    English prose and code, in every CPython install). `split`: None for
    all topics, "train" or "heldout" (every HELDOUT_EVERY-th topic)."""
    from pydoc_data.topics import topics

    for index, key in enumerate(sorted(topics)):
        if split is not None and (index % HELDOUT_EVERY == HELDOUT_EVERY - 1) != (
            split == "heldout"
        ):
            continue
        document = []
        for paragraph in re.split(r"\n\s*\n", topics[key]):
            lines = [ln for ln in paragraph.splitlines() if not _RULE.match(ln)]
            if lines:
                document.extend(split_sentences(" ".join(lines)))
        if len(document) > 1:
            yield document
