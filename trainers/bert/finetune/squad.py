"""SQuAD v1.1 and v2.0: questions read from the official JSON files, and the
windows (features) the model reads, as google-research/bert's
`run_squad.convert_examples_to_features` makes them (the same windows,
labels and max-context flags for the same vocabulary).

A context longer than the model's sequence is read in windows of
`max_seq_length` tokens ([CLS] question [SEP] window [SEP]) that start
`doc_stride` tokens apart, so an answer near a window's edge is whole in
another window. Training labels are the token span of the first answer:
the tokens of the whitespace-delimited words it touches, narrowed to the
answer's own tokens where they are found there (the reference's rule: an
answer cut inside a token, "199" of "(1998),", keeps its whole words); or
[CLS] (0, 0) where the window does not hold the whole span or the question
has none (v2.0). Decoding (`spans`) maps token spans back to characters of
the context through the tokenizer's offsets.
"""

import bisect
import dataclasses

from trainers.bert.errors import DataError, read_json


@dataclasses.dataclass(frozen=True)
class Example:
    qid: str
    question: str
    context: str
    answers: tuple  # ((text, character start), ...); () for a v2.0 no-answer
    is_impossible: bool = False


@dataclasses.dataclass(frozen=True)
class Dataset:
    examples: list
    is_v2: bool
    # Question ids whose first answer's `answer_start` does not point at its
    # text in the context (left out of training; kept for evaluation).
    misplaced: list
    raw: dict  # the parsed file, for the official metric


def read(path):
    """The questions of a SQuAD JSON file, checked. Errors name the file and
    the question id; answers whose `answer_start` does not match the
    context are counted, not fatal."""
    raw = read_json(path, "SQuAD file", DataError)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise DataError(f"{path}: not a SQuAD file (no 'data' list at the top)")
    version = str(raw.get("version", ""))
    examples, misplaced, seen = [], [], set()
    for a, article in enumerate(raw["data"]):
        for p, paragraph in enumerate(_field(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, path, where)
            for q, qa in enumerate(_field(paragraph, "qas", list, path, where)):
                qid = _field(qa, "id", (str, int), path, f"{where}.qas[{q}]")
                qid = str(qid)
                where_q = f"question {qid!r}"
                if qid in seen:
                    raise DataError(f"{path}: {where_q} appears twice")
                seen.add(qid)
                question = _field(qa, "question", str, path, where_q)
                impossible = bool(qa.get("is_impossible", False))
                answers = []
                for answer in _field(qa, "answers", list, path, where_q):
                    text = _field(answer, "text", str, path, where_q)
                    start = _field(answer, "answer_start", int, path, where_q)
                    answers.append((text, start))
                if not impossible and not answers:
                    raise DataError(f"{path}: {where_q} has no answers and is not is_impossible")
                if answers and not impossible:
                    text, start = answers[0]
                    if context[start : start + len(text)] != text:
                        misplaced.append(qid)
                examples.append(
                    Example(
                        qid, question, context, tuple(answers) if not impossible else (), impossible
                    )
                )
    if not examples:
        raise DataError(f"{path}: holds no questions")
    is_v2 = version.lstrip("v").startswith("2") or any(e.is_impossible for e in examples)
    return Dataset(examples, is_v2, misplaced, raw)


def _field(record, name, kind, path, where):
    if not isinstance(record, dict) or name not in record:
        raise DataError(f"{path}: {where} has no {name!r}")
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{path}: {where}: {name!r} is {type(value).__name__}, not as SQuAD's")
    return value


@dataclasses.dataclass(frozen=True)
class Feature:
    """One window of one question."""

    example_index: int
    token_ids: list  # [CLS] question [SEP] window [SEP], unpadded
    segment_ids: list
    # Per token: the (start, end) characters of the context it came from,
    # or None (question and special tokens: never part of an answer).
    # None in training features (only decoding reads them).
    offsets: list
    # Per token: whether this window gives the token its most context (of
    # the windows holding it); answers start only at such tokens.
    max_context: list
    start_position: int = 0  # training labels; 0 is [CLS], no answer here
    end_position: int = 0


def features(
    examples, tokenizer, max_seq_length=384, doc_stride=128, max_query_length=64, training=False
):
    """The windows of every example, in order (an example's windows are
    consecutive). In training, examples whose answer does not match the
    context at `answer_start` are left out (the reader counts them)."""
    limit = max_seq_length - 3  # [CLS], [SEP], [SEP]
    if max_query_length >= limit:
        raise ValueError(
            f"max_query_length={max_query_length} leaves no room for the context in "
            f"max_seq_length={max_seq_length}"
        )
    question_ids = tokenizer.encode_batch(e.question for e in examples)
    answer_ids = [[]] * len(examples)
    if training:
        answer_ids = tokenizer.encode_batch(e.answers[0][0] if e.answers else "" for e in examples)
    result = []
    for index, example in enumerate(examples):
        query = question_ids[index][:max_query_length]
        context_ids, context_offsets = tokenizer.encode(example.context)
        answer = None
        if training and example.answers:
            text, start = example.answers[0]
            if example.context[start : start + len(text)] != text:
                continue
            answer = _token_span(example.context, context_offsets, start, start + len(text))
            if answer is None:
                continue
            answer = _improve_span(context_ids, *answer, answer_ids[index])
        windows = _windows(len(context_ids), limit - len(query), doc_stride)
        for w, (start, length) in enumerate(windows):
            head = [tokenizer.cls_id, *query, tokenizer.sep_id]
            token_ids = head + context_ids[start : start + length] + [tokenizer.sep_id]
            segment_ids = [0] * len(head) + [1] * (length + 1)
            offsets = max_context = None  # decoding's; training needs neither
            if not training:
                offsets = [None] * len(head) + context_offsets[start : start + length] + [None]
                max_context = [False] * len(head)
                max_context += [_is_max_context(windows, w, start + i) for i in range(length)]
                max_context.append(False)
            labels = (0, 0)
            if answer is not None and start <= answer[0] and answer[1] < start + length:
                labels = (answer[0] - start + len(head), answer[1] - start + len(head))
            result.append(Feature(index, token_ids, segment_ids, offsets, max_context, *labels))
    return result


def _windows(num_tokens, window, stride):
    """[(start, length)] covering `num_tokens` context tokens (one empty
    window for an empty context)."""
    windows, start = [], 0
    while True:
        length = min(num_tokens - start, window)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, stride)


def _is_max_context(windows, current, position):
    """Whether window `current` gives `position` its most context: the
    larger of its fewest tokens on either side, with a small bonus for
    longer windows (google-research/bert's rule)."""
    best, best_score = None, None
    for w, (start, length) in enumerate(windows):
        end = start + length - 1
        if not start <= position <= end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best, best_score = w, score
    return best == current


def _token_span(context, offsets, start, end):
    """The context tokens of the whitespace-delimited words that hold
    characters [start, end), or None where those words hold no token.

    Whole words, as google-research/bert labels an answer before
    `_improve_span` (an answer cut inside a word, "Japan" of "Japanese",
    keeps the whole word's tokens unless its own tokens are found there)."""
    words = _word_starts(context)
    if not offsets or not words:
        return None
    first = _word_of(words, start)
    last = _word_of(words, max(end, start + 1) - 1)
    begin = words[first]
    stop = words[last + 1] if last + 1 < len(words) else len(context)
    tokens = [i for i, (s, _) in enumerate(offsets) if begin <= s < stop]
    return (tokens[0], tokens[-1]) if tokens else None


# google-research/bert's SQuAD reader splits contexts into words at these.
_WORD_BREAKS = frozenset(" \t\r\n\u202f")


def _word_starts(context):
    """The first character of each whitespace-delimited word, in order."""
    return [
        i
        for i, c in enumerate(context)
        if c not in _WORD_BREAKS and (i == 0 or context[i - 1] in _WORD_BREAKS)
    ]


def _word_of(word_starts, position):
    """The word holding character `position`, or the one before it where
    `position` is a space (the first word for leading spaces)."""
    return max(bisect.bisect_right(word_starts, position) - 1, 0)


def _improve_span(token_ids, first, last, answer_ids):
    """The sub-span of tokens first..last that is exactly the answer's own
    tokens, the earliest start and then the longest first, as
    google-research/bert's `_improve_answer_span` ("1998" of "(1998),"
    rather than all of "( 1998 ) ,"); else first..last unchanged."""
    for start in range(first, last + 1):
        for end in range(last, start - 1, -1):
            if token_ids[start : end + 1] == answer_ids:
                return start, end
    return first, last
