"""SQuAD reading, windows and span decoding on crafted examples."""

import dataclasses
import json
import re

import numpy as np
import pytest

from trainers.bert.data.shards import builtin
from trainers.bert.errors import DataError
from trainers.bert.finetune import spans, squad
from trainers.bert.formats.tokenizer import Tokenizer

CONTEXT = (
    "The function returns a new list. If the argument is omitted, the list is empty. "
    "A tuple is an immutable sequence of values and the result is always a new object."
)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(builtin.KEPT_VOCAB)


def _write(tmp_path, content, name="train.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _squad(qas, context=CONTEXT, version="1.1"):
    return {
        "version": version,
        "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}],
    }


def _qa(qid, text, start=None, question="What is a tuple?"):
    start = CONTEXT.index(text) if start is None else start
    return {"id": qid, "question": question, "answers": [{"text": text, "answer_start": start}]}


def test_read_counts_misplaced_answers(tmp_path):
    path = _write(tmp_path, _squad([_qa("a", "an immutable sequence"), _qa("b", "a new list", 3)]))
    dataset = squad.read(path)
    assert [e.qid for e in dataset.examples] == ["a", "b"]
    assert dataset.misplaced == ["b"] and not dataset.is_v2


@pytest.mark.parametrize(
    "content, named",
    [
        ('{"data": [\n{"paragraphs": ]}', "line 2"),
        (
            {
                "data": [
                    {"paragraphs": [{"context": "c", "qas": [{"question": "?", "answers": []}]}]}
                ]
            },
            "data[0].paragraphs[0].qas[0] has no 'id'",
        ),
        (_squad([{"id": "q7", "question": "?", "answers": []}]), "question 'q7' has no answers"),
        (_squad([_qa("q1", "a new list"), _qa("q1", "a new list")]), "question 'q1' appears twice"),
        ({"version": "1.1"}, "no 'data' list"),
    ],
)
def test_read_names_the_problem(tmp_path, content, named):
    path = _write(tmp_path, content)
    with pytest.raises(DataError, match=re.escape(named)) as error:
        squad.read(path)
    assert path in str(error.value)


def test_v2_no_answers(tmp_path):
    qas = [
        _qa("a", "a new list"),
        {"id": "n", "question": "?", "answers": [], "is_impossible": True},
    ]
    dataset = squad.read(_write(tmp_path, _squad(qas, version="v2.0")))
    assert dataset.is_v2 and dataset.examples[1].answers == ()
    features = squad.features(dataset.examples, Tokenizer(builtin.KEPT_VOCAB), training=True)
    assert (features[1].start_position, features[1].end_position) == (0, 0)


def _labelled(examples, tokenizer, *windows):
    """The training windows' labels on the same windows' decoding fields
    (training features keep no offsets)."""
    train = squad.features(examples, tokenizer, *windows, training=True)
    full = squad.features(examples, tokenizer, *windows)
    assert train[0].offsets is None
    assert [f.token_ids for f in train] == [f.token_ids for f in full]
    return [
        dataclasses.replace(f, start_position=t.start_position, end_position=t.end_position)
        for t, f in zip(train, full)
    ]


def _answer_text(feature, example):
    a, b = feature.start_position, feature.end_position
    return example.context[feature.offsets[a][0] : feature.offsets[b][1]]


def test_windows_cover_the_context_and_split_answers(tmp_path, tokenizer):
    answer = "an immutable sequence of values"
    dataset = squad.read(_write(tmp_path, _squad([_qa("a", answer)])))
    example = dataset.examples[0]
    context_tokens = len(tokenizer.encode(CONTEXT)[0])
    query = len(tokenizer.encode(example.question)[0])
    seq, stride = query + 3 + 12, 5  # 12 context tokens per window
    features = _labelled(dataset.examples, tokenizer, seq, stride, query)
    # Windows start 5 tokens apart until one reaches the end.
    assert len(features) == 1 + -(-(context_tokens - 12) // stride)
    assert all(len(f.token_ids) <= seq for f in features)
    with_answer = [f for f in features if f.start_position]
    assert with_answer and all(_answer_text(f, example) == answer for f in with_answer)
    # Windows that hold part of the answer only are labelled [CLS].
    a, b = CONTEXT.index(answer), CONTEXT.index(answer) + len(answer)
    partial = [
        (s, e) for s, e in map(_window_span, features) if s < b and e > a and not s <= a < b <= e
    ]
    assert partial
    assert all(not f.start_position for f in features if _window_span(f) in partial)
    # Each context token has its most context in exactly one window.
    counted = np.zeros(context_tokens, int)
    for w, f in enumerate(features):
        first = f.token_ids.index(tokenizer.sep_id) + 1
        for i, flag in enumerate(f.max_context[first:-1]):
            counted[w * stride + i] += flag
    assert (counted == 1).all()


def test_answer_at_window_edges(tmp_path, tokenizer):
    # An answer that is the first and the last token of the context.
    qas = [_qa("first", "The function"), _qa("last", "a new object.")]
    dataset = squad.read(_write(tmp_path, _squad(qas)))
    features = _labelled(dataset.examples, tokenizer, 64, 16, 16)
    for example in dataset.examples:
        labelled = [f for f in features if f.example_index == dataset.examples.index(example)]
        texts = {_answer_text(f, example) for f in labelled if f.start_position}
        assert texts == {example.answers[0][0]}


def _window_span(feature):
    """The characters of the context a window holds."""
    held = [o for o in feature.offsets if o is not None]
    return held[0][0], held[-1][1]


def _logits_for(feature, start, end, size):
    starts, ends = np.full(size, -10.0), np.full(size, -10.0)
    starts[start], ends[end] = 5.0, 5.0
    return starts, ends


def test_decode_finds_an_answer_split_across_windows(tmp_path, tokenizer):
    answer = "an immutable sequence of values"
    dataset = squad.read(_write(tmp_path, _squad([_qa("a", answer)])))
    query = len(tokenizer.encode(dataset.examples[0].question)[0])
    features = _labelled(dataset.examples, tokenizer, query + 15, 5, query)
    size = query + 15
    rows = [
        _logits_for(f, f.start_position, f.end_position, size)
        if f.start_position
        else (np.full(size, -10.0), np.full(size, -10.0))
        for f in features
    ]
    starts, ends = map(np.array, zip(*rows))
    predictions, null_odds, n_best = spans.decode(dataset.examples, features, starts, ends)
    assert predictions == {"a": answer} and null_odds == {}
    assert n_best["a"][0]["text"] == answer


def test_decode_rules(tmp_path, tokenizer):
    dataset = squad.read(_write(tmp_path, _squad([_qa("a", "a new list")])))
    (feature,) = squad.features(dataset.examples, tokenizer, 128, 32, 64)
    size, s, e = 128, feature.token_ids.index(tokenizer.sep_id) + 1, len(feature.token_ids) - 2
    starts, ends = np.full(size, -10.0), np.full(size, -10.0)
    starts[[1, e]] = ends[[1, e - 1]] = 9.0  # a question token; spans too long or reversed
    starts[s], ends[s], ends[s + 2] = 3.0, 1.0, 3.0
    predictions, _, _ = spans.decode(
        dataset.examples, [feature], starts[None], ends[None], max_answer_length=3
    )
    assert predictions["a"] == "The function returns"
    predictions, _, _ = spans.decode(
        dataset.examples, [feature], starts[None], ends[None], max_answer_length=2
    )
    assert predictions["a"] == "The"


def test_decode_v2_null_threshold(tmp_path, tokenizer):
    dataset = squad.read(_write(tmp_path, _squad([_qa("a", "a new list")], version="v2.0")))
    (feature,) = squad.features(dataset.examples, tokenizer, 128, 32, 64)
    s = feature.token_ids.index(tokenizer.sep_id) + 1
    starts, ends = np.zeros((1, 128)), np.zeros((1, 128))
    starts[0, 0] = ends[0, 0] = 2.0  # no-answer score 4
    starts[0, s] = ends[0, s + 1] = 1.5  # best span 3
    predictions, null_odds, _ = spans.decode(dataset.examples, [feature], starts, ends, is_v2=True)
    assert predictions == {"a": ""} and null_odds["a"] == pytest.approx(1.0)
    predictions, _, _ = spans.decode(
        dataset.examples, [feature], starts, ends, is_v2=True, null_score_threshold=1.5
    )
    assert predictions == {"a": "The function"}


def test_write_prediction_files(tmp_path):
    paths = spans.write(tmp_path, {"a": "x"}, {"a": 0.5}, {"a": [{"text": "x", "score": 1.0}]})
    assert json.loads(open(paths["predictions"]).read()) == {"a": "x"}
    assert json.loads(open(paths["null_odds"]).read()) == {"a": 0.5}
