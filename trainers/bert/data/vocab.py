"""WordPiece vocabularies: train one with `tokenizers`, or load a `vocab.txt`
(one token per line, the id is the line number: the format of
google-research/bert and of keras-hub's `BertTokenizer`)."""

import hashlib
import os

import numpy as np
from tokenizers import BertWordPieceTokenizer

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class Vocabulary:
    """A WordPiece vocabulary and its tokenizer."""

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab_file = vocab_file
        with open(vocab_file, encoding="utf-8") as f:
            self.tokens = [line.rstrip("\n") for line in f]
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        missing = [t for t in SPECIAL_TOKENS if t not in self.ids]
        if missing:
            raise ValueError(f"Vocabulary {vocab_file} lacks the special tokens {missing}")
        self.do_lower_case = do_lower_case
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.ids[t] for t in SPECIAL_TOKENS
        )
        # Word pieces that continue a word ("##ing"): whole-word masking keeps
        # them with the piece before.
        self.is_continuation = np.array([t.startswith("##") for t in self.tokens])
        # Tokens that random replacement may draw: not special, not [unused].
        self.ordinary_ids = np.array(
            [i for i, t in enumerate(self.tokens) if not (t.startswith("[") and t.endswith("]"))],
            dtype=np.int64,
        )
        self._tokenizer = BertWordPieceTokenizer(
            vocab_file, lowercase=do_lower_case, strip_accents=do_lower_case
        )

    def __len__(self):
        return len(self.tokens)

    def encode(self, sentences):
        """Sentences -> lists of token ids, without special tokens."""
        return [
            e.ids for e in self._tokenizer.encode_batch(list(sentences), add_special_tokens=False)
        ]

    @property
    def sha256(self):
        return file_sha256(self.vocab_file)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_vocabulary(documents, output_dir, vocab_size=8192, do_lower_case=True, min_frequency=2):
    """Trains WordPiece on the sentences of `documents` (an iterable, read
    once) and writes `output_dir/vocab.txt`; returns its path."""
    tokenizer = BertWordPieceTokenizer(lowercase=do_lower_case, strip_accents=do_lower_case)
    tokenizer.train_from_iterator(
        (sentence for document in documents for sentence in document),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    os.makedirs(output_dir, exist_ok=True)
    tokenizer.save_model(output_dir)
    return os.path.join(output_dir, "vocab.txt")
