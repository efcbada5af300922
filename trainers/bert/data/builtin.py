"""Pretraining data from the built-in corpus, made on first use: a WordPiece
vocabulary trained on the training topics, then training and held-out
shards for each (sequence length, predictions) a phase asks for. Later runs
reuse what is there (the manifest marks a finished set)."""

import os

from trainers.bert.data import corpus, create, instances, records

VOCAB_SIZE = 4096


def vocab_file(data_dir):
    path = os.path.join(data_dir, "vocab.txt")
    if not os.path.exists(path):
        from trainers.bert.data import vocab

        print(f"Training a {VOCAB_SIZE}-token vocabulary on the built-in corpus in {data_dir}")
        os.makedirs(data_dir, exist_ok=True)
        vocab.train_vocabulary(corpus.read_documents([corpus.BUILTIN_TRAIN]), data_dir, VOCAB_SIZE)
    return path


def shards(data_dir, seq_length, max_predictions, dupe_factor=5, seed=12345):
    """-> (training file pattern, held-out file pattern) for this length."""
    vocab = vocab_file(data_dir)
    folder = os.path.join(data_dir, f"seq{seq_length}_pred{max_predictions}")
    patterns = []
    for split, source, dupes in (
        ("train", corpus.BUILTIN_TRAIN, dupe_factor),
        ("heldout", corpus.BUILTIN_HELDOUT, dupe_factor),
    ):
        output = os.path.join(folder, split)
        if records.read_manifest(output) is None:
            print(f"Making {split} data (sequence length {seq_length}) in {output}")
            options = instances.Options(
                max_seq_length=seq_length,
                max_predictions_per_seq=max_predictions,
                dupe_factor=dupes,
            )
            create.create(
                source, output, options, vocab_file=vocab, num_shards=2, seed=seed, num_workers=1
            )
        patterns.append(os.path.join(output, "*.tfrecord"))
    return tuple(patterns)
