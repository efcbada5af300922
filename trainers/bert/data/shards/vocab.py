"""WordPiece vocabularies: train one with `tokenizers`, or load a `vocab.txt`
(one token per line, the id is the line number: the format of
google-research/bert and of keras-hub's `BertTokenizer`)."""

import collections
import json
import os
import re

import numpy as np
from tokenizers import BertWordPieceTokenizer, Regex, normalizers, pre_tokenizers

from trainers import atomic
from trainers.bert.data.records import file_sha256
from trainers.bert.data.shards.corpus import describe, read_documents
from trainers.bert.errors import ConfigError, DataError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A trained vocabulary holds at least this many tokens besides the special
# ones. WordPiece starts from the input's alphabet, each character seen and
# its "##" continuation: English text alone has some 70 characters (letters,
# digits, punctuation), about 140 tokens before any merge. Fewer than 100
# means a few lines of text or none (an empty input gives the 5 special
# tokens alone), where most words would be [UNK] or single letters: no data
# to pretrain on, and a sign of a wrong --input_file.
MIN_LEARNED_TOKENS = 100
# The text normalisation of google-research/bert's tokenization.py, which
# BERT's released vocabularies and checkpoints were made with
# (tests/trainers/bert/formats/test_tokenization_oracle.py checks the two agree;
# characters added to Unicode lately can still differ: `tokenizers`' own
# category tables are older than Python's unicodedata).
# Its BasicTokenizer drops NUL, U+FFFD and the control and format
# characters (categories Cc, Cf) other than tab, newline and carriage
# return, and turns those three and the space separators (Zs) into spaces;
# `tokenizers`' clean_text also drops private-use and unassigned characters
# (google keeps them), so the cleaning is done here.
_DROPPED = Regex(r"[\p{Cc}\p{Cf}\x{FFFD}&&[^\t\n\r]]")
_SPACES = Regex(r"[\t\n\r\p{Zs}]")
# Python's str.lower(), google's lower-casing, writes a capital sigma at
# the end of a word as the final form (U+03C2): Unicode's Final_Sigma
# context, a cased letter before it and none after it, either side skipping
# case-ignorable characters (also those that are cased too, such as ʰ).
# `tokenizers` lower-cases each character alone (U+03C3 always).
_CASED = r"[\p{Cased}&&\P{Case_Ignorable}]"
_FINAL_SIGMA = Regex(
    rf"(?<={_CASED}\p{{Case_Ignorable}}*)\x{{3A3}}(?!\p{{Case_Ignorable}}*{_CASED})"
)
# The CJK characters google makes words of their own (_is_chinese_char);
# `tokenizers`' handle_chinese_chars misses U+2B820-U+2B91F.
_CJK = Regex(
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
# google's WordpieceTokenizer maps longer words to [UNK] (tokenizers': 100).
MAX_INPUT_CHARS_PER_WORD = 200


def wordpiece_tokenizer(vocab_file=None, lowercase=True):
    """`tokenizers`' BERT WordPiece tokenizer (`vocab_file` None for one to
    train) normalising and splitting text as google-research/bert's
    FullTokenizer: clean-up; with `lowercase`, lower-casing as str.lower()
    then accent stripping (NFD, nonspacing marks dropped); words split at
    spaces, punctuation and each CJK character."""
    tokenizer = BertWordPieceTokenizer(
        vocab_file,
        clean_text=False,
        handle_chinese_chars=False,
        strip_accents=False,
        lowercase=False,
    )
    steps = [normalizers.Replace(_DROPPED, ""), normalizers.Replace(_SPACES, " ")]
    if lowercase:
        steps += [
            normalizers.Replace(_FINAL_SIGMA, "\u03c2"),
            normalizers.Lowercase(),
            normalizers.BertNormalizer(
                clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False
            ),
        ]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Split(_CJK, "isolated")]
    )
    tokenizer.model.max_input_chars_per_word = MAX_INPUT_CHARS_PER_WORD
    return tokenizer


def read_tokens(vocab_file):
    """A vocab.txt's tokens, one a line, in id order. A file of another
    format (a SentencePiece model or .vocab, a JSON tokenizer file, binary
    or empty) raises ConfigError naming the file and what it looks like."""
    with open(vocab_file, "rb") as f:
        head = f.read(1 << 16)
    looks_like = _other_format(head, vocab_file)
    if looks_like:
        raise ConfigError(
            f"vocabulary {vocab_file} is not a WordPiece vocab.txt: {looks_like}; give "
            "google-research/bert's format, one token a line with [PAD], [UNK], [CLS], "
            "[SEP] and [MASK] among them"
        )
    try:
        with open(vocab_file, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"vocabulary {vocab_file} is not a WordPiece vocab.txt: not UTF-8 text "
            f"(byte {error.start}: {error.reason})"
        ) from None


# The first bytes of files that are often taken for a vocab.txt.
_MAGIC = {b"\x1f\x8b": "a gzip file", b"PK\x03\x04": "a zip file"}


def _other_format(head, vocab_file):
    """What the first bytes of a supposed vocab.txt look like, if not one."""
    if not head.strip():
        return "it is empty"
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not a character cut at the block's end
            return "binary, not UTF-8 text (a SentencePiece .model?)"
        text = head[: error.start].decode("utf-8")
    if "\x00" in text:
        return "binary (it holds NUL bytes; a SentencePiece .model?)"
    if text.lstrip().startswith(("{", "[")):
        try:
            with open(vocab_file, encoding="utf-8") as f:
                json.load(f)
            return "a JSON file (a Hugging Face tokenizer.json or vocab.json?)"
        except (ValueError, UnicodeDecodeError):
            pass
    lines = text.split("\n")[:100]
    scored = [line for line in lines if re.fullmatch(r"[^\t]+\t-?[0-9.]+(e-?\d+)?", line)]
    if len(scored) > len(lines) // 2:
        return "token<TAB>score lines (a SentencePiece .vocab?)"
    return None


class Vocabulary:
    """A WordPiece vocabulary and its tokenizer."""

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab_file = vocab_file
        self.tokens = read_tokens(vocab_file)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        check_special_tokens(self.tokens, vocab_file)
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
        self._tokenizer = wordpiece_tokenizer(vocab_file, do_lower_case)

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


def check_special_tokens(tokens, vocab_file):
    """ConfigError naming the special tokens BERT needs that `tokens` lack."""
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise ConfigError(
            f"vocabulary {vocab_file} lacks the special tokens {missing}: BERT's WordPiece "
            f"vocab.txt holds {', '.join(SPECIAL_TOKENS)} (one a line)"
        )


def check_vocab_size(vocab_size):
    """The smallest vocabulary trained; ConfigError if `vocab_size` is below."""
    minimum = len(SPECIAL_TOKENS) + MIN_LEARNED_TOKENS
    if vocab_size < minimum:
        raise ConfigError(
            f"--vocab_size={vocab_size} is too small: {len(SPECIAL_TOKENS)} special tokens "
            f"and at least {MIN_LEARNED_TOKENS} learned ones make {minimum}"
        )
    return minimum


def train_vocabulary(
    documents,
    output_dir,
    vocab_size=8192,
    do_lower_case=True,
    min_frequency=2,
    source=None,
    report=print,
):
    """Trains WordPiece on the sentences of `documents` (an iterable, read
    once) and writes `output_dir/vocab.txt` atomically; returns its path.

    Raises DataError, naming the input (`source`, else the files of a
    `corpus.Documents`), when it holds no documents or gives a vocabulary
    of fewer than MIN_LEARNED_TOKENS tokens besides the special ones; then
    no vocab.txt is written. A vocabulary smaller than `vocab_size` (the
    input has too few distinct words) is said in one line to `report`,
    with the input's counts of distinct words and characters (a second
    pass over a `corpus.Documents`' files)."""
    minimum = check_vocab_size(vocab_size)
    files = getattr(documents, "files", None)
    if source is None:
        source = describe(files) if files is not None else "the documents given"
    read = 0

    def sentences():
        nonlocal read
        for document in documents:
            read += 1
            yield from document

    tokenizer = wordpiece_tokenizer(lowercase=do_lower_case)
    tokenizer.train_from_iterator(
        sentences(),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    if read == 0:
        raise DataError(f"{source} holds no documents (only blank lines or nothing)")
    size = tokenizer.get_vocab_size()
    if size < minimum:
        raise DataError(
            f"{source} is too small to train a vocabulary on: {read} document(s) gave "
            f"{size - len(SPECIAL_TOKENS)} tokens besides the {len(SPECIAL_TOKENS)} special "
            f"ones, fewer than {MIN_LEARNED_TOKENS}"
        )
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "vocab.txt")
    tokens = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    atomic.write_text(path, "".join(f"{token}\n" for token, _ in tokens))
    if size < vocab_size and report is not None:
        report(_shortfall(size, vocab_size, source, files, tokenizer, min_frequency))
    return path


def _shortfall(size, vocab_size, source, files, tokenizer, min_frequency):
    """The line saying a trained vocabulary is smaller than asked, and why."""
    why = "the input has too few distinct words to learn more pieces from"
    if files is not None:
        words = collections.Counter()
        for document in read_documents(files):
            for sentence in document:
                normalized = tokenizer.normalizer.normalize_str(sentence)
                words.update(w for w, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized))
        frequent = sum(1 for count in words.values() if count >= min_frequency)
        characters = len({c for word in words for c in word})
        times = "twice" if min_frequency == 2 else f"{min_frequency} times"
        why = (
            f"{source} has only {len(words)} distinct words ({frequent} of them seen "
            f"{times} or more, as WordPiece needs to learn a piece) and {characters} "
            "distinct characters"
        )
    return (
        f"note: the trained vocabulary has {size} tokens, not the {vocab_size} asked "
        f"(--vocab_size): {why}; the model's vocabulary size follows vocab.txt ({size}), "
        "and more text gives more tokens"
    )


def cased_tokens(tokens):
    """The vocabulary's ordinary tokens holding an upper-case letter."""
    return [t for t in tokens if t not in SPECIAL_TOKENS and t != t.lower() and t[0] != "["]


def check_casing(tokens, lowercase, source, setting="lowercase"):
    """A cased vocabulary (upper-case tokens) needs a cased tokenizer and an
    uncased one a lower-casing tokenizer: otherwise every capitalised word
    becomes [UNK] or word pieces the encoder never saw, and scores fall with
    no error (the mismatch google-research/bert checks by model name).
    `setting`: the name the fix gives (the data tool's --do_lower_case)."""
    cased = cased_tokens(tokens)
    if lowercase and cased:
        raise ConfigError(
            f"vocabulary {source} is cased ({len(cased)} tokens with capitals, e.g. "
            f"{cased[0]!r}) but the tokenizer lower-cases: set {setting}=False"
        )
    if not lowercase and not cased:
        raise ConfigError(
            f"vocabulary {source} is uncased (no token has a capital) but the tokenizer "
            f"keeps case: set {setting}=True"
        )
