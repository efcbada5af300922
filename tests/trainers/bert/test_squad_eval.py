"""The SQuAD metric against hand-computed cases, and its command."""

import json
import subprocess
import sys

import pytest

from trainers.bert import squad_eval


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Cat", "cat"),
        ("a cat, an owl and the dog!", "cat owl and dog"),
        ("  spaced\tout\n words ", "spaced out words"),
        ("theatre another", "theatre another"),  # articles as whole words only
        ("Café «Noir»", "café «noir»"),  # unicode kept; only ASCII punctuation goes
        ("U.S.A.", "usa"),
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert squad_eval.normalize_answer(text) == normalized


def test_f1_over_token_multisets():
    # prediction "the cat sat sat" -> [cat, sat, sat]; truth [cat, sat, down]:
    # common = cat + one sat = 2; precision 2/3, recall 2/3.
    assert squad_eval.f1("the cat sat sat", "cat sat down") == pytest.approx(2 / 3)
    # precision 1/1, recall 1/4 -> 2 * 0.25 / 1.25 = 0.4.
    assert squad_eval.f1("Denver", "the Denver Broncos of Colorado") == pytest.approx(0.4)
    assert squad_eval.f1("Broncos", "Panthers") == 0.0
    assert squad_eval.exact_match("The Broncos.", "broncos") == 1.0


def test_empty_answers():
    assert squad_eval.f1("", "") == 1.0
    assert squad_eval.f1("", "Denver") == 0.0
    assert squad_eval.f1("the", "") == 1.0  # normalises to nothing, as "" does
    assert squad_eval.exact_match("", "Denver") == 0.0


def _dataset(version="1.1"):
    qa = lambda qid, *texts: {  # noqa: E731
        "id": qid,
        "question": "?",
        "answers": [{"text": t, "answer_start": 0} for t in texts],
        **({"is_impossible": not texts} if version == "v2.0" else {}),
    }
    qas = [qa("q1", "Denver Broncos", "the Broncos"), qa("q2", "Santa Clara, California")]
    if version == "v2.0":
        qas.append(qa("q3"))
    return {"version": version, "data": [{"paragraphs": [{"context": "c", "qas": qas}]}]}


def test_v1_maximum_over_truths_and_missing_predictions():
    predictions = {"q1": "Broncos"}  # q2 unanswered: scores 0, counted
    figures, missing = squad_eval.evaluate(_dataset(), predictions)
    # q1: EM vs "the Broncos" = 1; F1 max(2/3, 1) = 1. q2: 0.
    assert figures == {"exact_match": 50.0, "f1": 50.0}
    assert missing == 1


def test_v2_has_answer_and_no_answer():
    predictions = {"q1": "Denver", "q2": "Santa Clara", "q3": ""}
    figures, missing = squad_eval.evaluate(_dataset("v2.0"), predictions)
    f1_q1 = 2 * (1 / 1) * (1 / 2) / (1 + 1 / 2)  # vs "Denver Broncos"
    f1_q2 = 2 * 1 * (2 / 3) / (1 + 2 / 3)
    assert missing == 0
    assert figures["exact"] == figures["exact_match"] == pytest.approx(100 / 3)
    assert figures["f1"] == pytest.approx(100 * (f1_q1 + f1_q2 + 1) / 3)
    assert figures["HasAns_f1"] == pytest.approx(100 * (f1_q1 + f1_q2) / 2)
    assert figures["HasAns_total"] == 2
    assert figures["NoAns_exact"] == 100.0 and figures["NoAns_total"] == 1


def test_v2_no_answer_threshold_and_best_threshold():
    predictions = {"q1": "Denver Broncos", "q2": "Santa Clara, California", "q3": "Denver"}
    na_probs = {"q1": 0.1, "q2": 0.2, "q3": 0.9}
    figures, _ = squad_eval.evaluate(_dataset("v2.0"), predictions, na_probs, 0.5)
    # Above 0.5, q3 answers "no answer": all three right.
    assert figures["exact"] == 100.0
    # The raw predictions miss q3; the best threshold (0.2) recovers it.
    assert figures["best_exact"] == 100.0 and figures["best_exact_thresh"] == 0.2


def test_command(tmp_path):
    data, predictions = tmp_path / "dev.json", tmp_path / "predictions.json"
    data.write_text(json.dumps(_dataset()))
    predictions.write_text(json.dumps({"q1": "the broncos", "q2": "Santa Clara"}))
    result = subprocess.run(
        [sys.executable, "-m", "trainers.bert.squad_eval", str(data), str(predictions)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout)
    assert figures["exact_match"] == 50.0
    assert figures["f1"] == pytest.approx(100 * (1 + 2 * (2 / 3) * 1 / (2 / 3 + 1)) / 2)


def test_command_names_a_malformed_file(tmp_path):
    data, predictions = tmp_path / "dev.json", tmp_path / "predictions.json"
    data.write_text(json.dumps(_dataset()))
    predictions.write_text('{"q1": "x",\n "q2": }')
    status = squad_eval.main([str(data), str(predictions)])
    assert status == 2
