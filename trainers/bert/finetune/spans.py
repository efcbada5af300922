"""Answers from the span head's logits: n-best span decoding over every
window of a question, the no-answer score of SQuAD v2.0, and the official
prediction files.

A span (i, j) of a window scores start_logits[i] + end_logits[j]; it is a
candidate when both ends are context tokens, i <= j, it holds at most
`max_answer_length` tokens, and the window gives token i its most context
(so a span seen in two overlapping windows is scored once). The
`n_best_size` best starts and ends of each window are paired. The answer is
the context's own characters from the first token's start to the last
token's end. The no-answer score is the smallest [CLS] score (start + end
at 0) over the windows; v2.0 answers "" where it exceeds the best span's
score by more than `null_score_threshold`.
"""

import json
import os

import numpy as np

from trainers.bert import run_dir


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
    best span score} (v2.0; else {}), n-best {qid: [{text, score}]}).

    `start_logits`/`end_logits`: one row per feature (padded rows longer
    than the feature are cut to its length)."""
    windows = {}
    for feature, starts, ends in zip(features, start_logits, end_logits):
        windows.setdefault(feature.example_index, []).append((feature, starts, ends))
    predictions, null_odds, n_best = {}, {}, {}
    for index, example in enumerate(examples):
        candidates, null_score = {}, np.inf
        for feature, starts, ends in windows.get(index, []):
            length = len(feature.token_ids)
            starts, ends = np.asarray(starts[:length]), np.asarray(ends[:length])
            null_score = min(null_score, float(starts[0] + ends[0]))
            for i in _top(starts, n_best_size):
                if feature.offsets[i] is None or not feature.max_context[i]:
                    continue
                for j in _top(ends, n_best_size):
                    if feature.offsets[j] is None or j < i or j - i + 1 > max_answer_length:
                        continue
                    span = (feature.offsets[i][0], feature.offsets[j][1])
                    score = float(starts[i] + ends[j])
                    if score > candidates.get(span, -np.inf):
                        candidates[span] = score
        ranked = sorted(candidates.items(), key=lambda item: -item[1])[:n_best_size]
        texts = [(example.context[a:b], score) for (a, b), score in ranked]
        n_best[example.qid] = [{"text": t, "score": s} for t, s in texts]
        best_text, best_score = texts[0] if texts else ("", -np.inf)
        if is_v2:
            difference = null_score - best_score
            null_odds[example.qid] = float(difference) if np.isfinite(difference) else 1e9
            if difference > null_score_threshold:
                best_text = ""
        predictions[example.qid] = best_text
    return predictions, null_odds, n_best


def _top(values, n):
    """Indices of the `n` largest values, largest first."""
    n = min(n, len(values))
    top = np.argpartition(-values, n - 1)[:n]
    return top[np.argsort(-values[top], kind="stable")]


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
