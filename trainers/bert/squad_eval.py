"""The SQuAD metric, with the official evaluation scripts' interface.

    python -m trainers.bert.squad_eval dev-v1.1.json predictions.json
    python -m trainers.bert.squad_eval dev-v2.0.json predictions.json \\
        --na-prob-file null_odds.json

prints one JSON line: `{"exact_match": ..., "f1": ...}` for SQuAD v1.1; for
v2.0 the official v2.0 script's figures (`exact`, `f1`, `total`,
`HasAns_*`, `NoAns_*`, with `--na-prob-file` also `best_exact`, `best_f1`
and their thresholds), and `exact_match` equal to `exact`. Scores are
percentages.

The figures are the official scripts' (v1.1 and v2.0): answers are
normalised (lower case, ASCII punctuation and the articles a/an/the removed,
white space collapsed); F1 is over the multisets of the normalised tokens;
a question scores the maximum over its ground-truth answers. In v2.0 a
question without answers has the single gold answer "", so only an empty
prediction scores on it. A question the predictions leave out scores 0 and
is counted on stderr, as the official scripts do.
"""

import argparse
import collections
import json
import re
import string
import sys

from trainers.bert import errors

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """Lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction, truth):
    """Token-multiset F1 of two answers. Where either normalises to nothing
    (a v2.0 no-answer), 1 if both do, else 0."""
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not true:
        return float(predicted == true)
    common = sum((collections.Counter(predicted) & collections.Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(true)
    return 2 * precision * recall / (precision + recall)


def best_over_truths(metric, prediction, truths):
    return max(metric(prediction, truth) for truth in truths)


class DatasetError(ValueError):
    """A dataset or predictions file that is not what SQuAD's are."""


def questions(dataset, source="the dataset"):
    """{question id: its ground-truth answer texts} of a SQuAD dataset (the
    parsed JSON). Answers that normalise to nothing are dropped, as in the
    official v2.0 script; a question left without any (a v2.0 no-answer)
    gets [""]."""
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise DatasetError(f"{source}: not a SQuAD file (no 'data' list at the top)")
    answers = {}
    for article in dataset["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                if "id" not in qa:
                    raise DatasetError(f"{source}: a question without an 'id': {qa!r:.80}")
                texts = [
                    a["text"] for a in qa.get("answers", []) if normalize_answer(a.get("text", ""))
                ]
                answers[qa["id"]] = texts or [""]
    return answers


def is_v2(dataset):
    """SQuAD 2.0 by its version field, or by any unanswerable question."""
    if str(dataset.get("version", "")).lstrip("v").startswith("2"):
        return True
    return any(
        qa.get("is_impossible", False)
        for article in dataset["data"]
        for paragraph in article.get("paragraphs", [])
        for qa in paragraph.get("qas", [])
    )


def evaluate(dataset, predictions, na_probs=None, na_prob_threshold=1.0):
    """The official figures of `predictions` ({question id: answer text}).

    Returns a dict and the number of questions without a prediction."""
    truths = questions(dataset)
    exact, f1s = {}, {}  # a question without a prediction scores 0
    for qid, answers in truths.items():
        text = predictions.get(qid)
        answered = isinstance(text, str)
        exact[qid] = best_over_truths(exact_match, text, answers) if answered else 0.0
        f1s[qid] = best_over_truths(f1, text, answers) if answered else 0.0
    missing = sum(qid not in predictions for qid in truths)
    if not is_v2(dataset):
        return {
            "exact_match": _percent(exact.values(), len(truths)),
            "f1": _percent(f1s.values(), len(truths)),
        }, missing
    raw = exact, f1s
    if na_probs is not None:
        # As the official v2.0 script: a score above the threshold answers
        # "no answer".
        exact, f1s = dict(exact), dict(f1s)
        for qid, answers in truths.items():
            if na_probs.get(qid, 0.0) > na_prob_threshold:
                exact[qid] = f1s[qid] = float(answers == [""])
    has_answer = [q for q, a in truths.items() if a != [""]]
    no_answer = [q for q, a in truths.items() if a == [""]]
    figures = {
        "exact": _percent(exact.values(), len(truths)),
        "f1": _percent(f1s.values(), len(truths)),
        "total": len(truths),
    }
    for name, ids in (("HasAns", has_answer), ("NoAns", no_answer)):
        if ids:
            figures[f"{name}_exact"] = _percent((exact[q] for q in ids), len(ids))
            figures[f"{name}_f1"] = _percent((f1s[q] for q in ids), len(ids))
            figures[f"{name}_total"] = len(ids)
    if na_probs is not None:
        for name, scores in zip(("exact", "f1"), raw):
            best, threshold = _best_threshold(predictions, scores, na_probs, truths)
            figures[f"best_{name}"], figures[f"best_{name}_thresh"] = best, threshold
    figures["exact_match"] = figures["exact"]
    return figures, missing


def _best_threshold(predictions, scores, na_probs, truths):
    """The official v2.0 search: questions sorted by no-answer probability;
    answering "no answer" above each candidate threshold; the best score."""
    score = current = sum(1 for a in truths.values() if a == [""])
    threshold = 0.0
    for qid in sorted(truths, key=lambda q: na_probs.get(q, 0.0)):
        if truths[qid] != [""]:
            change = scores[qid]
        elif predictions.get(qid):
            change = -1
        else:
            change = 0
        current += change
        if current > score:
            score, threshold = current, na_probs.get(qid, 0.0)
    return 100.0 * score / len(truths), threshold


def _percent(values, count):
    return 100.0 * sum(values) / count if count else 0.0


def read_json(path, what):
    return errors.read_json(path, what, DatasetError)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_file", help="the SQuAD dataset (v1.1 or v2.0 JSON)")
    parser.add_argument("pred_file", help="predictions: {question id: answer text}")
    parser.add_argument("--na-prob-file", "-n", help="v2.0: {question id: no-answer score}")
    parser.add_argument(
        "--na-prob-thresh",
        "-t",
        type=float,
        default=1.0,
        help="v2.0: predict no answer where the no-answer score is above this (default 1.0)",
    )
    args = parser.parse_args(argv)
    try:
        dataset = read_json(args.data_file, "dataset")
        predictions = read_json(args.pred_file, "predictions")
        if not isinstance(predictions, dict):
            raise DatasetError(f"predictions {args.pred_file}: not a {{question id: text}} object")
        na_probs = read_json(args.na_prob_file, "no-answer scores") if args.na_prob_file else None
        questions(dataset, f"dataset {args.data_file}")
        figures, missing = evaluate(dataset, predictions, na_probs, args.na_prob_thresh)
    except DatasetError as error:
        print(f"squad_eval: {error}", file=sys.stderr)
        return 2
    if missing:
        print(f"squad_eval: {missing} question(s) without a prediction score 0", file=sys.stderr)
    print(json.dumps(figures))
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
