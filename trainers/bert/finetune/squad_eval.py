"""The SQuAD metric, with the official evaluation scripts' interface.

    python -m trainers.bert.finetune.squad_eval dev-v1.1.json predictions.json
    python -m trainers.bert.finetune.squad_eval dev-v2.0.json predictions.json \\
        --na-prob-file null_odds.json

prints one JSON line: `{"exact_match": ..., "f1": ...}` for SQuAD v1.1; for
v2.0 the official v2.0 script's figures (`exact`, `f1`, `total`,
`HasAns_*`, `NoAns_*`, with `--na-prob-file` also `best_exact`, `best_f1`
and their thresholds), and `exact_match` equal to `exact`. Scores are
percentages.

A file is scored by the official script of its version: v2.0 (SQuAD-explorer's
evaluate-v2.0.py) where its version field says 2 or any question is
`is_impossible`, else v1.1 (evaluate-v1.1.py). Both normalise answers alike
(lower case, ASCII punctuation and then the whole words a/an/the removed,
white space collapsed), take F1 over the multisets of the normalised tokens
and score a question by the maximum over its ground-truth answers. They
differ on answers that normalise to nothing ("the", "A."):

- v1.1 keeps every ground truth; F1 needs a common token, so it is 0 where
  both sides normalise to nothing, while exact match is 1 there.
- v2.0 drops such ground truths and scores a question left without any
  against the single answer "", where F1 is 1 if the prediction normalises
  to nothing too. Whether a question counts as HasAns or NoAns goes by its
  raw answers list, so a question whose answers are all "the" is HasAns.

A question the predictions leave out scores 0 and counts in every total, as
in the v1.1 script; the v2.0 script cannot score such a file (it fails with
a KeyError), so for v2.0 this is our rule, and the command counts them on
stderr.
"""

import argparse
import collections
import json
import re
import string
import sys

from trainers.bert import cli, errors

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """Lower case, no ASCII punctuation, no articles, single spaces, in that
    order (so "a-ha" is "aha", not "ha")."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction, truth, v2=False):
    """Token-multiset F1 of two answers. The scripts differ only where both
    normalise to nothing: v1.1 finds no common token and scores 0, v2.0 reads
    two no-answers that agree and scores 1."""
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if v2 and not predicted and not true:
        return 1.0
    common = sum((collections.Counter(predicted) & collections.Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(true)
    return 2 * precision * recall / (precision + recall)


def gold_answers(texts, v2):
    """The answers a prediction is scored against: v1.1 all of `texts`; v2.0
    those that do not normalise to nothing, or [""] where none is left."""
    if not v2:
        return texts
    return [text for text in texts if normalize_answer(text)] or [""]


class DatasetError(errors.DataError):
    """A dataset or predictions file that is not what SQuAD's are."""


def questions(dataset, source="the dataset"):
    """{question id: its answer texts as in the file} of a SQuAD dataset (the
    parsed JSON); a v2.0 no-answer question has []."""
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise DatasetError(f"{source}: not a SQuAD file (no 'data' list at the top)")
    answers = {}
    for article in dataset["data"]:
        for paragraph in _objects(article, "paragraphs", source):
            for qa in _objects(paragraph, "qas", source):
                if "id" not in qa:
                    raise DatasetError(f"{source}: a question without an 'id': {qa!r:.80}")
                texts = [
                    a.get("text") if isinstance(a, dict) else None
                    for a in _list(qa, "answers", source)
                ]
                if not all(isinstance(text, str) for text in texts):
                    raise DatasetError(
                        f"{source}: question {qa['id']!r} has an answer without text"
                    )
                answers[qa["id"]] = texts
    return answers


def _list(parent, key, source):
    """`parent[key]` ([] where absent), checked to be a list."""
    found = parent.get(key, [])
    if not isinstance(found, list):
        raise DatasetError(f"{source}: {key!r} is not a list: {found!r:.80}")
    return found


def _objects(parent, key, source):
    """`parent[key]`, a list of JSON objects; `parent` is one too."""
    if not isinstance(parent, dict):
        raise DatasetError(
            f"{source}: not a SQuAD file (an entry is not an object: {parent!r:.80})"
        )
    found = _list(parent, key, source)
    for item in found:
        if not isinstance(item, dict):
            raise DatasetError(f"{source}: an entry of {key!r} is not an object: {item!r:.80}")
    return found


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


def evaluate(dataset, predictions, na_probs=None, na_prob_threshold=1.0, source="the dataset"):
    """The official figures of `predictions` ({question id: answer text}).

    Returns a dict and the number of questions without a prediction; a
    dataset that cannot be scored raises DatasetError naming `source`."""
    answers, v2 = questions(dataset, source), is_v2(dataset)
    exact, f1s = {}, {}  # of the questions with a prediction
    for qid, texts in answers.items():
        prediction = predictions.get(qid)
        if not isinstance(prediction, str):
            continue
        if not texts and not v2:
            raise DatasetError(
                f"{source}: question {qid!r} has no answers: a v1.1 file cannot score it"
                " (a v2.0 file says version 2.0 or marks it is_impossible)"
            )
        truths = gold_answers(texts, v2)
        exact[qid] = max(exact_match(prediction, truth) for truth in truths)
        f1s[qid] = max(f1(prediction, truth, v2) for truth in truths)
    missing = len(answers) - len(exact)
    if not v2:
        return {
            "exact_match": _percent(exact.values(), len(answers)),
            "f1": _percent(f1s.values(), len(answers)),
        }, missing
    has_answer = {qid: bool(texts) for qid, texts in answers.items()}
    # As the v2.0 script, also without no-answer scores (then all 0.0): a
    # score above the threshold answers "no answer", right on NoAns only.
    probabilities = na_probs or {}

    def thresholded(scores):
        return {
            qid: float(not has_answer[qid])
            if probabilities.get(qid, 0.0) > na_prob_threshold
            else score
            for qid, score in scores.items()
        }

    exact_at, f1_at = thresholded(exact), thresholded(f1s)
    figures = {
        "exact": _percent(exact_at.values(), len(answers)),
        "f1": _percent(f1_at.values(), len(answers)),
        "total": len(answers),
    }
    for name, kind in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has == kind]
        if ids:
            figures[f"{name}_exact"] = _percent((exact_at.get(q, 0.0) for q in ids), len(ids))
            figures[f"{name}_f1"] = _percent((f1_at.get(q, 0.0) for q in ids), len(ids))
            figures[f"{name}_total"] = len(ids)
    if na_probs is not None:
        for name, scores in (("exact", exact), ("f1", f1s)):
            best, threshold = _best_threshold(scores, predictions, na_probs, has_answer)
            figures[f"best_{name}"] = 100.0 * best / len(answers)
            figures[f"best_{name}_thresh"] = threshold
    figures["exact_match"] = figures["exact"]
    return figures, missing


def _best_threshold(scores, predictions, na_probs, has_answer):
    """The v2.0 script's search for the best no-answer threshold, quirks
    kept: start from "no answer" everywhere (each NoAns question right), then
    answer the questions in order of rising no-answer score (ties in the
    order of `na_probs`): a HasAns question adds its raw score, a NoAns one
    takes 1 off unless its prediction is "" (even one that normalises to
    nothing and so scored 1). The best running score wins, at the score of
    the question where it was first reached (mid-tie, maybe), or 0.0."""
    current = best = sum(1 for qid in scores if not has_answer[qid])
    threshold = 0.0
    order = [q for q in na_probs if q in scores] + [q for q in scores if q not in na_probs]
    for qid in sorted(order, key=lambda q: na_probs.get(q, 0.0)):
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, threshold = current, na_probs.get(qid, 0.0)
    return best, threshold


def _percent(values, count):
    return 100.0 * sum(values) / count if count else 0.0


def read_json(path, what):
    return errors.read_json(path, what, DatasetError)


NAME = "bert-squad-eval"


class _Parser(argparse.ArgumentParser):
    """Usage errors as the other commands': one line, exit status 2."""

    def error(self, message):
        cli.fail(NAME, f"{message}; --help lists the arguments", cli.CONFIG_STATUS, False)


def main(argv=None):
    """The command: exit status 0, 1 for a file that cannot be scored (one
    line naming it), 2 for a usage error."""
    parser = _Parser(prog=NAME, description=__doc__.split("\n\n")[0])
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
        na_probs = None
        if args.na_prob_file:
            na_probs = read_json(args.na_prob_file, "no-answer scores")
            if not isinstance(na_probs, dict) or not all(
                isinstance(p, (int, float)) and not isinstance(p, bool) for p in na_probs.values()
            ):
                raise DatasetError(
                    f"no-answer scores {args.na_prob_file}: not a {{question id: number}} object"
                )
        figures, missing = evaluate(
            dataset, predictions, na_probs, args.na_prob_thresh, f"dataset {args.data_file}"
        )
    except DatasetError as error:
        if cli.verbose():
            raise
        cli.fail(NAME, str(error), cli.RUNTIME_STATUS)
    if missing:
        print(f"{NAME}: note: {missing} question(s) without a prediction score 0", file=sys.stderr)
    print(json.dumps(figures))
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
