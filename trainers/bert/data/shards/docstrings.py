"""A larger offline corpus: the docstrings of the running Python's standard
library (about 1.7 MB of English for CPython 3.11, four times the built-in
help topics), already on every machine that runs Python, nothing downloaded.

One document per module file: its module, class and function docstrings of
at least `MIN_WORDS` words, in source order, split into sentences like the
help topics. Files are read in sorted path order; every HELDOUT_EVERY-th
file is held out. Test suites (`test/`, `tests/`, `idle_test/`) and
installed packages (`site-packages/`) are left out. The text changes
between Python versions: `write` returns its SHA-256, to be recorded with
anything trained on it.
"""

import ast
import hashlib
import os
import sysconfig

from trainers import atomic
from trainers.bert.data.shards import corpus

MIN_WORDS = 8
HELDOUT_EVERY = corpus.HELDOUT_EVERY
SKIPPED = frozenset(("test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"))


def module_files(root=None):
    """The `.py` files under `root` (default: the standard library) in
    sorted path order, test suites and installed packages left out."""
    root = root or sysconfig.get_paths()["stdlib"]
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED)
        found += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
    return sorted(found, key=lambda path: os.path.relpath(path, root))


def documents(files):
    """One document (a list of sentences) per file with docstrings; files
    that do not parse (a few test fixtures do not) are passed over."""
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        sentences = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node)
                if text and len(text.split()) >= MIN_WORDS:
                    sentences += corpus.topic_sentences(text)
        if len(sentences) > 1:
            yield sentences


def write(path, split, root=None):
    """Writes the `split` ("train" or "heldout") documents in the BERT text
    format (a sentence per line, a blank line between documents), whole or
    not at all; returns {"documents", "bytes", "sha256"}."""
    files = module_files(root)
    held = [i % HELDOUT_EVERY == HELDOUT_EVERY - 1 for i in range(len(files))]
    chosen = [f for f, h in zip(files, held) if h == (split == "heldout")]
    text = "\n\n".join("\n".join(d) for d in documents(chosen)) + "\n"
    data = text.encode("utf-8")
    atomic.write_bytes(path, data)
    return {
        "documents": text.count("\n\n") + 1,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
