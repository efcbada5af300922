"""Tokenization against google-research/bert's `FullTokenizer` (the oracle,
`tests/google_bert.py`) on a multilingual sample, with an uncased
(do_lower_case) and a cased vocabulary written here.

Pretraining's tokenizer (`data.vocab.Vocabulary.encode`) and fine-tuning's
(`tokenizer.Tokenizer.encode`, `encode_batch`) give google's ids on every
text. The exported encoder's tokenizer (`export.export_encoder`, loaded as
docs/data.md does, `keras_hub.models.BertTokenizer.from_preset`) gives them
too, eagerly and in a graph, except where keras-hub's own normalisation
cannot follow google's: those characters are pinned in KERAS_HUB_DIFFERS
(and GRAPH_DIFFERS) with both tokenizations, asserted exactly; a text
differing elsewhere fails, and so does a pinned difference that goes away.
"""

import json
import os
import types

import keras_hub
import pytest
import tensorflow as tf

from tests import google_bert
from trainers.bert.data.shards.vocab import SPECIAL_TOKENS, Vocabulary
from trainers.bert.formats import export
from trainers.bert.formats.tokenizer import Tokenizer
from trainers.bert.model import bert as model_lib

_, _, _, tokenization = google_bert.modules()

UNCASED, CASED = True, False

# Texts every tokenizer tokenizes as google does, with either vocabulary.
SAMPLE = [
    "Café résumé naïve façade",  # precomposed accents
    "Cafe\u0301 re\u0301sume\u0301 nai\u0308ve",  # combining marks
    "北京大学 東京 日本語のテキスト",  # CJK ideographs, kana
    "X𫠠Y 𫡀",  # CJK Extension E (U+2B820: missed by `tokenizers`' own CJK ranges)
    "Ελληνικά: Αθήνα και Θεσσαλονίκη.",  # Greek (no final sigma: pinned below)
    "Русский текст, Ёлка и йод.",  # Cyrillic (Ё, й decompose)
    "العربية: مَرْحَبًا بالعالم",  # Arabic with harakat
    "עברית: שָׁלוֹם עולם",  # Hebrew with niqqud
    "हिन्दी भाषा",  # Devanagari (spacing and nonspacing marks)
    "Hello, world! (a+b)=c; x/y? #1 @home $5 ^_^ `q` {k} [t] |p| ~z \"w\" 'v' <html>",
    "«Bonjour» — “quoted” ¿Qué? ¡Sí! ‘single’ • § 「括弧」",  # Unicode punctuation
    "5€ 10°C ±3 ×2 ©",  # symbols, not punctuation: part of the word
    "İstanbul",
    "The Quick BROWN fox",
    "tab\there new\nline cr\rret   many  spaces ",
    "x\ue000y \ue000",  # private use: a character like any other
    "👍🏽 🙂",
    "a" * 201,  # longer than 200 characters: [UNK]
    "",
    "   ",
]


def _both(google, keras_hub):
    return {UNCASED: (google, keras_hub), CASED: (google, keras_hub)}


# Where keras-hub's BertTokenizer cannot follow google: character -> (the
# text it is tested in, {vocabulary: (google's word pieces, keras-hub's)}).
# keras-hub, when lower-casing, applies NFKC and full case folding (ß ->
# ss, ligatures and compatibility characters decomposed, final ς -> σ,
# Hangul syllables recomposed after google's NFD); it splits words at
# control and format characters (google drops them, joining the word),
# keeps U+FFFD (google drops it), splits at ASCII whitespace only (google
# also at Unicode spaces and line separators), and maps words of over 100
# UTF-8 bytes to [UNK] (google: over 200 characters).
KERAS_HUB_DIFFERS = {
    "ß": ("Straße", {UNCASED: (["str", "##aße"], ["str", "##a", "##s", "##s", "##e"])}),
    "ﬁ": ("ﬁne", {UNCASED: (["ﬁ", "##ne"], ["f", "##i", "##ne"])}),
    "ﬂ": ("ﬂow", {UNCASED: (["ﬂ", "##ow"], ["f", "##l", "##ow"])}),
    "Σ": ("ΛΟΓΟΣ", {UNCASED: (["λο", "##γος"], ["λο", "##γ", "##ο", "##σ"])}),
    "ς": ("λόγος", {UNCASED: (["λο", "##γος"], ["λο", "##γ", "##ο", "##σ"])}),
    "…": ("wait…", {UNCASED: (["wa", "##it", "…"], ["wa", "##it", ".", "##.", "##."])}),
    "™": ("Brand™", {UNCASED: (["bra", "##nd™"], ["bra", "##n", "##d", "##t", "##m"])}),
    "½": ("3½", {UNCASED: (["3", "##½"], ["[UNK]"])}),
    "²": ("m²", {UNCASED: (["m", "##²"], ["m", "##2"])}),
    "Ｆ": ("Ｆｕｌｌ", {UNCASED: (["ｆｕ", "##ｌｌ"], ["f", "##u", "##l", "##l"])}),
    # google's pieces are the syllables' jamo (its NFD), keras-hub's NFKC
    # recomposes them.
    "서": ("서울", {UNCASED: (["\u1109\u1165", "##\u110b\u116e\u11af"], ["[UNK]"])}),
    "\x00": ("a\x00b", _both(["a", "##b"], ["a", "b"])),
    "\x07": ("a\x07b", _both(["a", "##b"], ["a", "b"])),
    "\x85": ("a\x85b", _both(["a", "##b"], ["a", "b"])),
    "\u200b": ("a\u200bb", _both(["a", "##b"], ["a", "b"])),
    "\u200d": ("a\u200db", _both(["a", "##b"], ["a", "b"])),
    "\ufeff": ("a\ufeffb", _both(["a", "##b"], ["a", "b"])),
    "\xad": ("a\xadb", _both(["a", "##b"], ["a", "b"])),
    "\ufffd": ("a\ufffdb", _both(["a", "##b"], ["[UNK]"])),
    "\xa0": ("a\xa0b", _both(["a", "b"], ["[UNK]"])),
    "\u2009": ("a\u2009b", _both(["a", "b"], ["[UNK]"])),
    "\u3000": ("a\u3000b", _both(["a", "b"], ["[UNK]"])),
    "\u2028": ("a\u2028b", _both(["a", "b"], ["[UNK]"])),
    "150 letters": ("b" * 150, _both(["b" * 75, "##" + "b" * 75], ["[UNK]"])),
    "60 letters of 2 bytes": ("я" * 60, _both(["я" * 30, "##" + "я" * 30], ["[UNK]"])),
}

# keras-hub's tokenizer traced in a graph (tf.data, tf.function: it runs
# tf-text), where it differs from its eager self: character -> its
# KERAS_HUB_DIFFERS text's word pieces, with either vocabulary. NUL ends
# the text there.
GRAPH_DIFFERS = {"\x00": ["a"]}


@pytest.fixture(scope="module", autouse=True)
def _tokenization_flags():
    """The reference tokenizer's one flag (its absl definition is removed
    on import), at its default."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenization, "FLAGS", types.SimpleNamespace(preserve_unused_tokens=False))
        yield


def _texts():
    return SAMPLE + [text for text, _ in KERAS_HUB_DIFFERS.values()]


def _vocab_file(folder, lowercase):
    """The special tokens; each word google's basic tokenizer makes of the
    texts cut in two ("cafe" -> "ca", "##fe") and each of its characters
    alone and as a continuation, so that every word has pieces and none is
    [UNK] but the longest."""
    basic = tokenization.BasicTokenizer(do_lower_case=lowercase)
    words = [w for text in _texts() for w in basic.tokenize(text)]
    tokens = dict.fromkeys(SPECIAL_TOKENS)
    for word in words:
        half = len(word) // 2
        tokens.update(dict.fromkeys([word[:half], "##" + word[half:]] if half else [word]))
    for word in words:
        tokens.update(dict.fromkeys(c for c in word))
        tokens.update(dict.fromkeys("##" + c for c in word))
    path = os.path.join(folder, f"vocab-{'uncased' if lowercase else 'cased'}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in tokens))
    return path


@pytest.fixture(scope="module")
def vocabs(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("vocab"))
    return {lowercase: _vocab_file(folder, lowercase) for lowercase in (UNCASED, CASED)}


@pytest.fixture(scope="module")
def presets(tmp_path_factory, vocabs):
    """Each vocabulary's encoder exported as training does (the casing read
    from the vocabulary), a tiny random backbone."""
    folders = {}
    for lowercase, vocab_file in vocabs.items():
        size = len(Vocabulary(vocab_file).tokens)
        config = model_lib.preset("tiny", vocabulary_size=size, max_sequence_length=16)
        folder = str(tmp_path_factory.mktemp("uncased" if lowercase else "cased"))
        folders[lowercase] = export.export_encoder(
            folder, model_lib.build_backbone(config), vocab_file
        )
    return folders


def _google(vocab_file, lowercase, texts):
    google = tokenization.FullTokenizer(vocab_file, do_lower_case=lowercase)
    return [google.convert_tokens_to_ids(google.tokenize(text)) for text in texts]


def _pieces(vocab_file):
    """ids -> word pieces."""
    with open(vocab_file, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    return lambda ids: [tokens[i] for i in ids]


@pytest.mark.parametrize("lowercase", [UNCASED, CASED], ids=["uncased", "cased"])
def test_training_tokenizers_give_googles_ids(vocabs, lowercase):
    texts = _texts()
    google = _google(vocabs[lowercase], lowercase, texts)
    unk = SPECIAL_TOKENS.index("[UNK]")
    assert [text for text, ids in zip(texts, google) if unk in ids] == ["a" * 201]
    pieces = _pieces(vocabs[lowercase])
    expected = {text: pieces(ids) for text, ids in zip(texts, google)}
    pretraining = Vocabulary(vocabs[lowercase], lowercase).encode(texts)
    assert {text: pieces(ids) for text, ids in zip(texts, pretraining)} == expected
    tokenizer = Tokenizer(vocabs[lowercase], lowercase)
    encoded = {text: tokenizer.encode(text) for text in texts}
    assert {text: pieces(ids) for text, (ids, _) in encoded.items()} == expected
    assert tokenizer.encode_batch(texts) == google
    for text, (_, offsets) in encoded.items():  # fine-tuning cuts answers out by them
        assert all(0 <= start < end <= len(text) for start, end in offsets), text
        assert all(a[1] <= b[0] for a, b in zip(offsets, offsets[1:])), text


@pytest.mark.parametrize("lowercase", [UNCASED, CASED], ids=["uncased", "cased"])
def test_exported_tokenizer_keeps_the_casing_and_accent_stripping(presets, lowercase):
    with open(os.path.join(presets[lowercase], "tokenizer.json"), encoding="utf-8") as f:
        config = json.load(f)["config"]
    assert config["lowercase"] is lowercase and config["strip_accents"] is lowercase
    tokenizer = keras_hub.models.BertTokenizer.from_preset(presets[lowercase])
    assert tokenizer.lowercase is lowercase and tokenizer.strip_accents is lowercase


@pytest.mark.parametrize("lowercase", [UNCASED, CASED], ids=["uncased", "cased"])
def test_exported_tokenizer_gives_googles_ids_but_where_pinned(presets, vocabs, lowercase):
    texts = _texts()
    google = _google(vocabs[lowercase], lowercase, texts)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(presets[lowercase])
    eager = [[int(i) for i in tokenizer(text)] for text in texts]
    graph = tf.function(tokenizer)(tf.constant(texts)).to_list()
    pieces = _pieces(vocabs[lowercase])
    differs = {text: (pieces(g), pieces(k)) for text, g, k in zip(texts, google, eager) if g != k}
    assert differs == {
        text: pins[lowercase] for text, pins in KERAS_HUB_DIFFERS.values() if lowercase in pins
    }
    graph_differs = {text: pieces(g) for text, g, k in zip(texts, graph, eager) if g != k}
    assert graph_differs == {
        KERAS_HUB_DIFFERS[char][0]: tokens for char, tokens in GRAPH_DIFFERS.items()
    }
