"""WordPiece tokenization for fine-tuning: token ids with the character
offsets of each token in the original text (answers are cut out of the
context by these offsets, so predictions keep the context's own casing,
accents and spacing), and the check that a vocabulary's casing agrees with
the tokenizer's."""

from tokenizers import BertWordPieceTokenizer

from trainers.bert.data.vocab import SPECIAL_TOKENS
from trainers.bert.errors import ConfigError


class Tokenizer:
    """`vocab_file`'s WordPiece tokenizer; `lowercase` also strips accents
    (BERT's uncased models)."""

    def __init__(self, vocab_file, lowercase=True):
        with open(vocab_file, encoding="utf-8") as f:
            self.tokens = [line.rstrip("\n") for line in f]
        missing = [t for t in SPECIAL_TOKENS if t not in self.tokens]
        if missing:
            raise ConfigError(f"vocabulary {vocab_file} lacks the special tokens {missing}")
        self.vocab_file, self.lowercase = vocab_file, lowercase
        check_casing(self.tokens, lowercase, vocab_file)
        ids = {t: i for i, t in enumerate(self.tokens)}
        self.pad_id, self.cls_id, self.sep_id = ids["[PAD]"], ids["[CLS]"], ids["[SEP]"]
        self._tokenizer = BertWordPieceTokenizer(
            vocab_file, lowercase=lowercase, strip_accents=lowercase
        )

    def __len__(self):
        return len(self.tokens)

    def encode(self, text):
        """-> (token ids, [(start, end) character offsets into `text`])."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def encode_batch(self, texts):
        """Token ids of each text (no offsets), in parallel threads."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]


def cased_tokens(tokens):
    """The vocabulary's ordinary tokens holding an upper-case letter."""
    return [t for t in tokens if t not in SPECIAL_TOKENS and t != t.lower() and t[0] != "["]


def check_casing(tokens, lowercase, source):
    """A cased vocabulary (upper-case tokens) needs a cased tokenizer and an
    uncased one a lower-casing tokenizer: otherwise every capitalised word
    becomes [UNK] or word pieces the encoder never saw, and scores fall with
    no error (the mismatch google-research/bert checks by model name)."""
    cased = cased_tokens(tokens)
    if lowercase and cased:
        raise ConfigError(
            f"vocabulary {source} is cased ({len(cased)} tokens with capitals, e.g. "
            f"{cased[0]!r}) but the tokenizer lower-cases: set lowercase=False"
        )
    if not lowercase and not cased:
        raise ConfigError(
            f"vocabulary {source} is uncased (no token has a capital) but the tokenizer "
            "keeps case: set lowercase=True"
        )
