"""Answers from the span head's logits: n-best span decoding over every
window of a question, the no-answer score of SQuAD v2.0, and the official
prediction files, as google-research/bert's `run_squad.write_predictions`
makes them from the same logits (its n-best lists and its v2.0 rule), so
predictions compare with the reference's.

A span (i, j) of a window scores start_logits[i] + end_logits[j]; it is a
candidate when i is among the window's `n_best_size` best starts and j
among its best ends (ranked over the whole padded row, as the reference
does: the model does not mask padding), both are context tokens, i <= j,
it holds at most `max_answer_length` tokens, and the window gives token i
its most context (so a span seen in two overlapping windows is scored
once). Candidates are ranked by score and the n-best list keeps the first
of each text. The answer is the context's own characters from the first
token's start to the last token's end (the reference maps word pieces back
through whitespace-split words instead; where that differs, see
`tests/trainers/bert/finetune/test_squad_oracle.py`). The no-answer score
is the smallest [CLS] score (start + end at 0) over the windows; v2.0
answers "" where it exceeds the best span's score by more than
`null_score_threshold`, and the no-answer ("") is an n-best entry.
"""

import json
import math
import os
import unicodedata

import numpy as np

from trainers.bert.run import run_dir


def decode(
    examples,
    features,
    start_logits,
    end_logits,
    n_best_size=20,
    max_answer_length=30,
    is_v2=False,
    null_score_threshold=0.0,
):
    """-> (predictions {qid: text}, null_odds {qid: no-answer score minus
    best span score} (v2.0; else {}), n-best {qid: [{text, probability,
    start_logit, end_logit}]}, best first).

    `start_logits`/`end_logits`: one row per feature, padded to the
    sequence length (positions past the feature never answer)."""
    windows = {}
    for feature, starts, ends in zip(features, start_logits, end_logits):
        windows.setdefault(feature.example_index, []).append((feature, starts, ends))
    predictions, null_odds, n_best = {}, {}, {}
    for index, example in enumerate(examples):
        candidates, null = [], None
        for feature, starts, ends in windows.get(index, []):
            starts, ends = np.asarray(starts), np.asarray(ends)
            cls = (float(starts[0]), float(ends[0]))
            if null is None or cls[0] + cls[1] < null[0] + null[1]:
                null = cls  # the first window's on a tie
            candidates += _candidates(feature, starts, ends, n_best_size, max_answer_length)
        if is_v2 and null is not None:
            candidates.append((None, *null))  # after the spans that score the same
        entries = _n_best(example.context, candidates, n_best_size)
        if is_v2 and null is not None and all(text for text, _, _ in entries):
            entries.append(("", *null))
        n_best[example.qid] = _as_json(entries)
        best = next((entry for entry in entries if entry[0]), None)
        if not is_v2:
            predictions[example.qid] = best[0] if best else ""
            continue
        # In the reference's order of operations (the same float).
        difference = null[0] + null[1] - best[1] - best[2] if best and null else math.inf
        null_odds[example.qid] = difference if math.isfinite(difference) else 1e9
        predictions[example.qid] = "" if difference > null_score_threshold else best[0]
    return predictions, null_odds, n_best


def _candidates(feature, starts, ends, n_best_size, max_answer_length):
    """[((first character, end character), start logit, end logit)] of one
    window's valid spans, in the reference's order (best start first, then
    best end)."""
    length, offsets = len(feature.token_ids), feature.offsets
    result = []
    for i in _top(starts, n_best_size):
        if i >= length or offsets[i] is None or not feature.max_context[i]:
            continue
        for j in _top(ends, n_best_size):
            if j >= length or offsets[j] is None or j < i or j - i + 1 > max_answer_length:
                continue
            result.append(((offsets[i][0], offsets[j][1]), float(starts[i]), float(ends[j])))
    return result


def _top(values, n):
    """Indices of the `n` largest values, largest first (the lower index
    first on a tie, as a stable sort gives)."""
    return np.argsort(-values, kind="stable")[:n]


def _n_best(context, candidates, n_best_size):
    """[(text, start logit, end logit)]: the best candidates, the first of
    each text only (two spans with the same text would crowd out a
    different answer), at most `n_best_size`. A span of None is the
    no-answer, text ""."""
    ranked = sorted(candidates, key=lambda c: c[1] + c[2], reverse=True)  # stable
    entries, seen = [], set()
    for span, start, end in ranked:
        if len(entries) >= n_best_size:
            break
        text = "" if span is None else context[span[0] : _past_marks(context, span[1])]
        if text not in seen:
            seen.add(text)
            entries.append((text, start, end))
    return entries


def _past_marks(context, end):
    """`end` moved past the combining marks that follow it: an uncased
    tokenizer strips accents, and a decomposed accent on a word's last
    letter ("cafe" then U+0301) falls outside the last token's characters;
    the answer keeps it, as the reference's whole-word text does."""
    while end < len(context) and unicodedata.category(context[end]) == "Mn":
        end += 1
    return end


def _as_json(entries):
    """The n-best list as the reference's nbest_predictions.json holds it:
    each entry's probability is the softmax of the entries' scores."""
    scores = [start + end for _, start, end in entries]
    probabilities = _softmax(scores)
    return [
        {"text": text, "probability": p, "start_logit": start, "end_logit": end}
        for (text, start, end), p in zip(entries, probabilities)
    ]


def _softmax(scores):
    """Softmax in the reference's float arithmetic (Python floats, summed in
    order), so the written probabilities are the same numbers."""
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = 0.0
    for e in exps:
        total += e
    return [e / total for e in exps]


def write(output_dir, predictions, null_odds, n_best):
    """predictions.json (and null_odds.json for v2.0, nbest_predictions.json)
    in the official scripts' formats; returns their paths."""
    paths = {}
    for name, content in (
        ("predictions", predictions),
        ("null_odds", null_odds),
        ("nbest_predictions", n_best),
    ):
        if name == "null_odds" and not content:
            continue
        text = json.dumps(content, indent=1, ensure_ascii=False)
        paths[name] = run_dir.write_atomically(os.path.join(output_dir, f"{name}.json"), text)
    return paths
