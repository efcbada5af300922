"""WordPiece tokenization with character offsets: token ids with the
offsets of each token in the original text (fine-tuning cuts answers out of
the context by them, so predictions keep the context's own casing, accents
and spacing); the vocabulary's casing is checked against the tokenizer's."""

from trainers.bert.data.shards.vocab import (
    SPECIAL_TOKENS,
    check_casing,
    read_tokens,
    wordpiece_tokenizer,
)
from trainers.bert.errors import ConfigError


class Tokenizer:
    """`vocab_file`'s WordPiece tokenizer; `lowercase` also strips accents
    (BERT's uncased models)."""

    def __init__(self, vocab_file, lowercase=True):
        self.tokens = read_tokens(vocab_file)
        missing = [t for t in SPECIAL_TOKENS if t not in self.tokens]
        if missing:
            raise ConfigError(f"vocabulary {vocab_file} lacks the special tokens {missing}")
        self.vocab_file, self.lowercase = vocab_file, lowercase
        check_casing(self.tokens, lowercase, vocab_file)
        ids = {t: i for i, t in enumerate(self.tokens)}
        self.pad_id, self.cls_id, self.sep_id = ids["[PAD]"], ids["[CLS]"], ids["[SEP]"]
        self._tokenizer = wordpiece_tokenizer(vocab_file, lowercase)

    def __len__(self):
        return len(self.tokens)

    def encode(self, text):
        """-> (token ids, [(start, end) character offsets into `text`])."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def encode_batch(self, texts):
        """Token ids of each text (no offsets), in parallel threads."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]
