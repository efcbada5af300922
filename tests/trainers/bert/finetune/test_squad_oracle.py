"""SQuAD windows, labels and decoding against google-research/bert's own
`run_squad.py` (`tests/google_bert.py`), on small SQuAD files and a
vocabulary written here.

For the same examples and vocabulary, every window's input ids, segment
ids, training labels (start/end, [CLS] where the window does not hold the
answer or there is none) and max-context flags equal the reference's, and
each context token maps to the reference's whitespace-split word (the
project keeps character offsets; the word is the one holding the token's
first character). From the same logits, the prediction, n-best and null-odds
files equal `write_predictions`' (v1.1, and v2.0 with its null-score rule).

Where the two legitimately differ, the difference is pinned below with its
reason (`test_answer_text_*`, `test_no_span_*`, `test_misplaced_*`).
"""

import json
import os
import types

import numpy as np
import pytest

from tests import google_bert
from trainers.bert.finetune import spans, squad
from trainers.bert.formats.tokenizer import Tokenizer

_, _, run_squad, tokenization = google_bert.modules()

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

CAFE = (
    "The Zürich café opened in 1911 and was sold (1998), after the U.S. company Müller & Sons "
    "bought it for $4.5 million. Its naïve façade, painted by Renée Dubois, survived the war; "
    "the owners' records say the building's roof was replaced in 1951 and again in 2004. "
    "Visitors from the U.K. and the U.S. still come to see the façade, and the café serves "
    "Japanese tea, Swiss chocolate and coffee from Brazil."
)
NOVEL = (
    'Steve Walker\'s first novel, "The Quiet Harbour", appeared in 1987. Walker, born in Leeds '
    "on 3 May 1952, taught mathematics at a grammar school before writing full-time. His later "
    "books (about ten in all) were translated into German, French and Japanese."
)
WATER = "Water boils at 100 degrees Celsius at sea level. At higher altitudes it boils lower."
LONG_QUESTION = (
    "According to the owners' records, in which year was the roof of the building in Zürich "
    "replaced for the first time after the war?"
)
# (question, answer): answers are placed at their first occurrence.
QUESTIONS = {
    CAFE: [
        ("When was the café sold?", "1998"),  # inside "(1998),"
        ("Which decade?", "199"),  # no token of its own: labelled "(1998)," whole
        ("Which company bought the café?", "Müller & Sons"),
        ("How much did the company pay?", "$4.5 million"),
        ("Who painted the façade?", "Renée Dubois"),
        ("When was the roof replaced?", "1951 and again in 2004"),  # split by small strides
        (LONG_QUESTION, " 1951"),  # a leading space
        ("Where is the café?", "Zürich"),
        ("Where do visitors come from?", "the U.K. and the U.S."),
        ("Which tea?", "Japan"),  # the word piece "japan" of "Japanese"
        ("Where is the coffee from?", "Brazil."),  # the context's last token
    ],
    NOVEL: [
        ("Whose novel?", "Steve Walker"),  # the context's first token
        ("When was Walker born?", "3 May 1952"),
        ("What did Walker teach?", "mathematics"),
        ("What is it?", "Steve Walker's first novel"),
        ("Which languages?", "German, French and Japanese."),
        ("Which title?", "The Quiet Harbour"),
    ],
    WATER: [("At what temperature does water boil?", "100 degrees Celsius")],
}
IMPOSSIBLE = "When did the café close?"
# Words the uncased vocabulary holds as pieces only.
PIECES = {
    "japanese": ["japan", "##ese"],
    "harbour": ["harb", "##our"],
    "mathematics": ["math", "##ema", "##tics"],
    "translated": ["trans", "##lated"],
}
# What the reference answers (v1.1) where no span is valid.
NONCE = {"text": "empty", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0}
# The prediction files, as both name them.
NAMES = ("predictions", "nbest_predictions", "null_odds")
# (max_seq_length, doc_stride, max_query_length): one window, then many.
WINDOWS = [(384, 128, 64), (64, 16, 12), (40, 5, 8), (32, 3, 6)]


@pytest.fixture(scope="module", autouse=True)
def _tokenization_flags():
    """The reference tokenizer's one flag (its absl definition is removed
    on import)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenization, "FLAGS", types.SimpleNamespace(preserve_unused_tokens=False))
        yield


@pytest.fixture
def flags(monkeypatch):
    """The flags the reference's SQuAD code reads, set by each test."""
    flags = types.SimpleNamespace(
        version_2_with_negative=False, null_score_diff_threshold=0.0, verbose_logging=False
    )
    monkeypatch.setattr(run_squad, "FLAGS", flags)
    return flags


def _squad_file(folder, v2):
    """Two articles (the first of two paragraphs); v2.0 adds a question
    without answer to each paragraph."""
    articles, n = [], 0
    for contexts in ([CAFE, NOVEL], [WATER]):
        paragraphs = []
        for context in contexts:
            qas = []
            for question, answer in QUESTIONS[context]:
                n += 1
                qa = {"id": f"q{n}", "question": question}
                qa["answers"] = [{"text": answer, "answer_start": context.index(answer)}]
                qas.append({**qa, "is_impossible": False} if v2 else qa)
            if v2:
                n += 1
                qa = {"id": f"q{n}", "question": IMPOSSIBLE, "answers": [], "is_impossible": True}
                qas.append(qa)
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": f"t{len(articles)}", "paragraphs": paragraphs})
    path = os.path.join(folder, f"squad-{'v2' if v2 else 'v1'}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": "v2.0" if v2 else "1.1", "data": articles}, f)
    return path


def _vocab_file(folder, texts, lowercase=True, pieces=PIECES, leave_out=()):
    """Every word the reference's basic tokenizer makes of `texts` (some as
    word pieces), but `leave_out` ([UNK])."""
    basic = tokenization.BasicTokenizer(do_lower_case=lowercase)
    tokens = list(SPECIAL)
    for text in texts:
        for word in basic.tokenize(text):
            for token in pieces.get(word, [word]) if word not in leave_out else []:
                if token not in tokens:
                    tokens.append(token)
    path = os.path.join(folder, f"vocab-{'uncased' if lowercase else 'cased'}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return path


def _all_texts():
    """The contexts and the questions."""
    return [*QUESTIONS, *(q for qs in QUESTIONS.values() for q, _ in qs), IMPOSSIBLE]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("squad_oracle"))
    return {
        "v1": _squad_file(folder, v2=False),
        "v2": _squad_file(folder, v2=True),
        "uncased": _vocab_file(folder, _all_texts()),
        "cased": _vocab_file(folder, _all_texts(), lowercase=False, pieces={}),
    }


def _google_features(path, vocab_file, lowercase, windows, training):
    examples = run_squad.read_squad_examples(path, is_training=training)
    features = []
    run_squad.convert_examples_to_features(
        examples,
        tokenization.FullTokenizer(vocab_file, do_lower_case=lowercase),
        *windows,
        is_training=training,
        output_fn=features.append,
    )
    return examples, features


def _word_of_character(context):
    """The reference's word index of each character of `context` (its
    reader's `char_to_word_offset`: a space belongs to the word before)."""
    words, previous_is_space, result = -1, True, []
    for c in context:
        is_space = c in " \t\r\n" or ord(c) == 0x202F
        words += previous_is_space and not is_space
        previous_is_space = is_space
        result.append(words)
    return result


def _as_google(feature, example, training):
    """A project feature in the reference's terms."""
    result = {
        "example": feature.example_index,
        "input_ids": feature.token_ids,
        "segment_ids": feature.segment_ids,
    }
    if training:
        result["labels"] = (feature.start_position, feature.end_position)
    else:
        word = _word_of_character(example.context)
        held = [(i, o) for i, o in enumerate(feature.offsets) if o is not None]
        result["token_to_orig_map"] = {i: word[o[0]] for i, o in held}
        result["token_is_max_context"] = {i: feature.max_context[i] for i, _ in held}
    return result


def _google_as_dict(feature, training):
    n = len(feature.tokens)  # the rest is padding
    result = {
        "example": feature.example_index,
        "input_ids": feature.input_ids[:n],
        "segment_ids": feature.segment_ids[:n],
    }
    if training:
        result["labels"] = (feature.start_position, feature.end_position)
    else:
        result["token_to_orig_map"] = feature.token_to_orig_map
        result["token_is_max_context"] = feature.token_is_max_context
    return result


@pytest.mark.parametrize("windows", WINDOWS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "predict"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_windows_equal_the_reference(flags, files, version, training, windows):
    flags.version_2_with_negative = version == "v2"
    _, expected = _google_features(files[version], files["uncased"], True, windows, training)
    dataset = squad.read(files[version])
    features = squad.features(
        dataset.examples, Tokenizer(files["uncased"]), *windows, training=training
    )
    got = [_as_google(f, dataset.examples[f.example_index], training) for f in features]
    assert got == [_google_as_dict(f, training) for f in expected]
    if windows[1] < 8:  # many full windows, some holding the answer
        assert len(features) > 10 * len(dataset.examples)
        assert any(len(f.token_ids) == windows[0] for f in features)
        assert not training or {f.start_position > 0 for f in features} == {True, False}


@pytest.mark.parametrize("training", [True, False], ids=["train", "predict"])
def test_cased_windows_equal_the_reference(flags, files, training):
    _, expected = _google_features(files["v1"], files["cased"], False, WINDOWS[1], training)
    dataset = squad.read(files["v1"])
    tokenizer = Tokenizer(files["cased"], lowercase=False)
    features = squad.features(dataset.examples, tokenizer, *WINDOWS[1], training=training)
    got = [_as_google(f, dataset.examples[f.example_index], training) for f in features]
    assert got == [_google_as_dict(f, training) for f in expected]


def _logits(num_features, seq_length, seed, null_bonus=0.0):
    """Random float32 logits (a model's output dtype) for every position,
    padding included; `null_bonus` raises the [CLS] ones (v2.0)."""
    rng = np.random.default_rng(seed)
    starts, ends = rng.normal(scale=3.0, size=(2, num_features, seq_length)).astype(np.float32)
    starts[:, 0] += null_bonus
    ends[:, 0] += null_bonus
    return starts, ends


def _google_files(folder, examples, features, starts, ends, options, lowercase=True):
    results = [
        run_squad.RawResult(f.unique_id, [float(x) for x in s], [float(x) for x in e])
        for f, s, e in zip(features, starts, ends)
    ]
    os.makedirs(folder)
    paths = [os.path.join(folder, f"{name}.json") for name in NAMES]
    run_squad.write_predictions(examples, features, results, *options, lowercase, *paths)
    return {name: _read(path) for name, path in zip(NAMES, paths) if os.path.exists(path)}


def _without_nonce(files):
    """The reference's files with "" and an empty n-best list where it
    found no valid span in v1.1 and wrote its nonce answer "empty" (see
    `test_no_span_v1`)."""
    predictions, n_best = dict(files["predictions"]), dict(files["nbest_predictions"])
    for qid, entries in n_best.items():
        if entries == [NONCE]:
            predictions[qid], n_best[qid] = "", []
    return {**files, "predictions": predictions, "nbest_predictions": n_best}


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _project_files(folder, dataset, features, starts, ends, options, v2, threshold):
    outputs = spans.decode(dataset.examples, features, starts, ends, *options, v2, threshold)
    return {name: _read(path) for name, path in spans.write(folder, *outputs).items()}


@pytest.mark.parametrize("options", [(20, 30), (8, 12)], ids=["n20-len30", "n8-len12"])
@pytest.mark.parametrize("windows", WINDOWS[1:3])
@pytest.mark.parametrize(
    "version, threshold", [("v1", 0.0), ("v2", 0.0), ("v2", 2.5)], ids=["v1", "v2", "v2-2.5"]
)
def test_predictions_equal_the_reference(
    flags, files, tmp_path, version, threshold, windows, options
):
    v2 = version == "v2"
    flags.version_2_with_negative, flags.null_score_diff_threshold = v2, threshold
    examples, expected = _google_features(files[version], files["uncased"], True, windows, False)
    starts, ends = _logits(len(expected), windows[0], seed=windows[1], null_bonus=8.0 * v2)
    google = _google_files(str(tmp_path / "google"), examples, expected, starts, ends, options)
    dataset = squad.read(files[version])
    features = squad.features(dataset.examples, Tokenizer(files["uncased"]), *windows)
    project = _project_files(
        str(tmp_path / "project"), dataset, features, starts, ends, options, v2, threshold
    )
    assert project == _without_nonce(google)
    assert set(project) == {"predictions", "nbest_predictions", *["null_odds"] * v2}
    if v2:  # both sides of both thresholds, and no-answers ranked among the spans
        odds = list(project["null_odds"].values())
        assert min(odds) < 0 < min(o for o in odds if o > 0) <= 2.5 < max(odds)
        n_best = project["nbest_predictions"].values()
        assert any("" in [e["text"] for e in entries[:-1]] for entries in n_best)


# ------------------------------------------------------ pinned differences


def _one_question(folder, context, answer, start, lowercase=True, pieces=PIECES, leave_out=()):
    """A SQuAD v1.1 file of one question on `context`, and a vocabulary of
    its words."""
    qa = {"id": "q", "question": "What?", "answers": [{"text": answer, "answer_start": start}]}
    content = {"version": "1.1", "data": [{"paragraphs": [{"context": context, "qas": [qa]}]}]}
    path = os.path.join(folder, "one.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(content, f)
    vocab = _vocab_file(folder, [context, "What?"], lowercase, pieces, leave_out)
    return path, vocab


def _both_decode(folder, path, vocab, lowercase, logits, options, v2=False):
    """(the reference's files, the project's) from the same logits,
    `logits(feature)`, for the one window of `path`'s question (at
    `max_seq_length` 64), whose features are checked equal first."""
    examples, expected = _google_features(path, vocab, lowercase, (64, 16, 8), False)
    dataset = squad.read(path)
    tokenizer = Tokenizer(vocab, lowercase=lowercase)
    features = squad.features(dataset.examples, tokenizer, 64, 16, 8)
    assert [_as_google(f, dataset.examples[0], False) for f in features] == [
        _google_as_dict(f, False) for f in expected
    ]
    starts, ends = logits(features[0])
    project = _project_files(
        os.path.join(folder, "project"), dataset, features, starts, ends, options, v2, 0.0
    )
    google = _google_files(
        os.path.join(folder, "google"), examples, expected, starts, ends, options, lowercase
    )
    return google, project


def _span_logits(feature, first, end):
    """Logits whose one best span is the tokens from character `first` to
    character `end` of the context."""
    i = next(k for k, o in enumerate(feature.offsets) if o and o[0] == first)
    j = max(k for k, o in enumerate(feature.offsets) if o and o[1] <= end)
    starts, ends = np.zeros((2, 1, 64), np.float32)
    starts[0, i] = ends[0, j] = 9.0
    return starts, ends


# (context, the span's text, the reference's answer, the project's answer,
# vocabulary options). The project answers with the context's characters
# from the span's first token to its last; the reference re-aligns the
# word pieces with the whitespace-split words they came from and, where
# that fails, answers with those whole words.
ANSWER_TEXTS = {
    # The reference takes the first occurrence of the pieces' text in the
    # span's words: "s" of "smith ' s" is the "S" of "Smith".
    "first-occurrence": ("Steve Smith's first novel.", "s", "S", None, {}),
    # The reference joins the words with one space; the project keeps the
    # context's spacing (the official metric ignores whitespace).
    "whitespace-runs": (
        "The café  opened\nin 1911.",
        "café  opened\nin",
        "café opened in",
        None,
        {},
    ),
    # [UNK] is no text to align: the reference answers with the whole word.
    "unknown-word": (
        "Rollo (to Charles) was sworn.",
        "Charles",
        "Charles)",
        None,
        {"leave_out": ["charles"]},
    ),
    # Stripping a decomposed accent makes the word shorter: no character
    # alignment, the whole word.
    "decomposed-accent": ("The Japane\u0301se tea.", "Japan", "Japane\u0301se", None, {}),
    # The same answers: the word piece's own characters in both.
    "inside-a-word": ("It was sold (1998), after the war.", "1998", None, None, {}),
    "word-start": ("It was sold (1998), after the war.", "(1998", None, None, {}),
    "abbreviation": ("The U.S. company sold it.", "U.S", None, None, {}),
    "word-piece": ("The Japanese tea.", "Japan", None, None, {}),
    # A decomposed accent on a span's last letter is outside the last
    # token's characters; the project's answer keeps it, as the
    # reference's whole word does.
    "final-accent": (
        "The Zu\u0308rich cafe\u0301 opened.",
        "Zu\u0308rich cafe\u0301",
        None,
        None,
        {},
    ),
    "cased": ("Steve Smith's first novel.", "s", None, None, {"lowercase": False}),
}


@pytest.mark.parametrize("case", ANSWER_TEXTS)
def test_answer_text_where_the_reference_differs(flags, tmp_path, case):
    context, span, google_text, project_text, options = ANSWER_TEXTS[case]
    lowercase = options.get("lowercase", True)
    pieces, first = PIECES if lowercase else {}, context.index(span)
    leave_out = options.get("leave_out", ())
    path, vocab = _one_question(str(tmp_path), context, span, first, lowercase, pieces, leave_out)
    google, project = _both_decode(
        str(tmp_path),
        path,
        vocab,
        lowercase,
        lambda feature: _span_logits(feature, first, first + len(span)),
        options=(1, 30),
    )
    assert google["predictions"]["q"] == (google_text or span)
    assert project["predictions"]["q"] == (project_text or span)
    # Apart from the text, the same (one best) n-best entry.
    (entry,) = project["nbest_predictions"]["q"]
    assert google["nbest_predictions"]["q"] == [{**entry, "text": google_text or span}]


def _no_valid_span(folder):
    """A question, and logits whose one best start is a question token."""
    context = "The function returns a new list."
    path, vocab = _one_question(folder, context, "a new list", context.index("a new list"))

    def logits(_):
        starts, ends = np.zeros((2, 1, 64), np.float32)
        starts[0, 1] = 9.0  # "what"
        starts[0, 0], ends[0, 0] = 1.0, 2.0  # [CLS]
        return starts, ends

    return path, vocab, logits


def test_no_span_v1(flags, tmp_path):
    """No valid span among the n-best starts and ends (here the one best
    start is in the question): the reference writes its nonce answer
    "empty" (a placeholder "to avoid failure"); the project answers "" with
    an empty n-best list."""
    path, vocab, logits = _no_valid_span(str(tmp_path))
    google, project = _both_decode(str(tmp_path), path, vocab, True, logits, (1, 30))
    assert google["predictions"] == {"q": "empty"}
    assert google["nbest_predictions"] == {"q": [NONCE]}
    assert project["predictions"] == {"q": ""} and project["nbest_predictions"] == {"q": []}


def test_no_span_v2(flags, tmp_path):
    """The same in v2.0: the reference fails (it looks up the best non-null
    entry's logits, and there is none); the project answers "" with the
    no-answer alone in its n-best list and null odds 1e9."""
    flags.version_2_with_negative = True
    path, vocab, logits = _no_valid_span(str(tmp_path))
    with pytest.raises(AttributeError, match="start_logit"):
        _both_decode(str(tmp_path), path, vocab, True, logits, (1, 30), v2=True)
    project = {name: _read(tmp_path / "project" / f"{name}.json") for name in NAMES}
    assert project["predictions"] == {"q": ""} and project["null_odds"] == {"q": 1e9}
    null = {"text": "", "probability": 1.0, "start_logit": 1.0, "end_logit": 2.0}
    assert project["nbest_predictions"] == {"q": [null]}


def test_misplaced_answer_is_left_out_of_training(flags, tmp_path):
    """An `answer_start` that does not point at the answer's text: the
    reference trains on it where the text is within the words there; the
    project leaves the question out of training (and `squad.read` counts
    it)."""
    context = "The Japanese tea."
    path, vocab = _one_question(str(tmp_path), context, "Japanese", context.index("Japanese") + 1)
    _, expected = _google_features(path, vocab, True, (64, 16, 8), training=True)
    assert [(f.start_position, f.end_position) for f in expected] == [(5, 6)]  # japan ##ese
    dataset = squad.read(path)
    assert dataset.misplaced == ["q"]
    assert squad.features(dataset.examples, Tokenizer(vocab), 64, 16, 8, training=True) == []
