"""Pretraining data from the built-in corpus, the same bytes on every machine.

The corpus and its vocabulary are kept with the code:
    pydoc_topics.json.gz  CPython 3.11.7's help topics (`pydoc_data.topics`),
                          copyright the Python Software Foundation, under the
                          PSF License Agreement (docs.python.org/3/license.html)
    builtin_vocab.txt     the 4096-token WordPiece vocabulary trained once on
                          the corpus's training topics
so the data depends on neither the running Python (its help text changes
between versions) nor on `tokenizers` (its WordPiece trainer gives another
vocabulary on every run). On first use `vocab_file` copies the vocabulary into
the data folder and `shards` makes training and held-out shards for each
(sequence length, predictions) a phase asks for, with a fixed seed. Later
runs reuse what is there (a manifest made with this vocabulary marks a
finished set).

Both kept files are made again, on purpose only, under Python 3.11, by

    python -m trainers.bert.data.shards.builtin --regenerate

which writes the corpus from the running Python's `pydoc_data.topics` (JSON
with sorted keys, gzip'd with mtime 0: the same topics give the same bytes)
and trains a new vocabulary on it. Every built-in data set, and every model
trained on one, changes with them: commit both together.
"""

import argparse
import gzip
import io
import json
import os
import shutil
import sys
import tempfile

from trainers import atomic
from trainers.bert.data import records
from trainers.bert.data.shards import corpus, create, instances
from trainers.bert.errors import ConfigError, DataError

VOCAB_SIZE = 4096
KEPT_VOCAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "builtin_vocab.txt")
CORPUS_PYTHON = (3, 11)  # the Python whose help topics are kept
DO_LOWER_CASE = True  # the kept vocabulary is uncased


def vocab_file(data_dir):
    """`data_dir/vocab.txt`, a copy of the kept vocabulary (replacing any
    other vocabulary found there)."""
    path = os.path.join(data_dir, "vocab.txt")
    with open(KEPT_VOCAB, "rb") as f:
        kept = f.read()
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == kept:
                return path
    os.makedirs(data_dir, exist_ok=True)
    return atomic.write_bytes(path, kept)  # atomic: other processes may read it


def shards(data_dir, seq_length, max_predictions, dupe_factor=5, seed=12345):
    """-> (training file pattern, held-out file pattern) for this length."""
    vocab = vocab_file(data_dir)
    vocab_sha256 = records.file_sha256(vocab)
    folder = os.path.join(data_dir, f"seq{seq_length}_pred{max_predictions}")
    patterns = []
    for split, source in (("train", corpus.BUILTIN_TRAIN), ("heldout", corpus.BUILTIN_HELDOUT)):
        output = os.path.join(folder, split)
        try:
            manifest = records.read_manifest(output)
        except DataError:
            manifest = None  # unreadable: made again
        if manifest is None or manifest.get("vocab_sha256") != vocab_sha256:
            print(f"Making {split} data (sequence length {seq_length}) in {output}")
            options = instances.Options(
                max_seq_length=seq_length,
                max_predictions_per_seq=max_predictions,
                dupe_factor=dupe_factor,
            )
            create.create(
                source,
                output,
                options,
                vocab_file=vocab,
                do_lower_case=DO_LOWER_CASE,
                num_shards=2,
                seed=seed,
                num_workers=1,
                overwrite=True,  # this folder is the built-in data's own
            )
        patterns.append(os.path.join(output, "*.tfrecord"))
    return tuple(patterns)


def corpus_bytes(topics):
    """The kept corpus file's bytes for `topics`: JSON with sorted keys,
    gzip'd with mtime 0, no file name and operating system "unknown" in the
    header (`gzip.compress` writes zlib's, which differs by platform), so
    equal topics give equal bytes with the same zlib."""
    text = json.dumps(topics, sort_keys=True, ensure_ascii=False, indent=0)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as f:
        f.write(text.encode("utf-8"))
    return buffer.getvalue()


def regenerate():
    """Writes the kept corpus from this Python's `pydoc_data.topics`, then
    trains the kept vocabulary on its training topics."""
    if sys.version_info[:2] != CORPUS_PYTHON:
        raise ConfigError(
            f"Regenerate under Python {'.'.join(map(str, CORPUS_PYTHON))}, not "
            f"{sys.version.split()[0]}: the kept corpus is that version's help text"
        )
    from pydoc_data.topics import topics

    with open(corpus.BUILTIN_TOPICS, "wb") as f:
        f.write(corpus_bytes(topics))
    corpus.builtin_topics.cache_clear()
    from trainers.bert.data.shards import vocab

    with tempfile.TemporaryDirectory() as folder:
        trained = vocab.train_vocabulary(
            corpus.read_documents([corpus.BUILTIN_TRAIN]), folder, VOCAB_SIZE
        )
        shutil.copyfile(trained, KEPT_VOCAB)
    print(f"wrote {corpus.BUILTIN_TOPICS} and {KEPT_VOCAB}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--regenerate", action="store_true", help="Write the kept corpus and vocabulary again."
    )
    if parser.parse_args(argv).regenerate:
        regenerate()
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
