"""The SQuAD metric against cases worked out by hand, one for each rule of
the official v1.1 and v2.0 scripts, and its command."""

import json
import subprocess
import sys

import pytest

from trainers.bert.finetune import squad_eval


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Cat", "cat"),  # lower case
        ("a cat, an owl and the dog!", "cat owl and dog"),  # articles, punctuation
        ("  spaced\tout\n words ", "spaced out words"),  # white space collapsed
        ("x\u00a0y", "x y"),  # unicode white space too
        ("theatre another anthem", "theatre another anthem"),  # articles as whole words only
        ("The", ""),  # nothing left
        ("A.", ""),
        ("Café «Noir» — ¿sí?", "café «noir» — ¿sí"),  # only string.punctuation goes
        ("U.S.A.", "usa"),
        ("a-ha", "aha"),  # punctuation goes first: "a-" is no article then
        ("l'an", "lan"),
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert squad_eval.normalize_answer(text) == normalized


def test_exact_match_on_normalised_strings():
    assert squad_eval.exact_match("The Broncos.", "broncos") == 1.0
    assert squad_eval.exact_match("Broncos", "Denver Broncos") == 0.0
    assert squad_eval.exact_match("", "Denver") == 0.0
    # "the" and "A" both normalise to "": equal strings, in both versions.
    assert squad_eval.exact_match("the", "A") == 1.0


@pytest.mark.parametrize("v2", [False, True])
def test_f1_over_token_multisets(v2):
    # [sat, sat, mat] vs [sat, sat, on, rug]: common = sat twice = 2;
    # precision 2/3, recall 2/4 -> F1 = 2*(2/3)(1/2)/(2/3+1/2) = 4/7.
    assert squad_eval.f1("sat sat mat", "sat sat on rug", v2) == pytest.approx(4 / 7)
    # [sat, sat, sat] vs [sat]: common = min(3, 1) = 1, not 3;
    # precision 1/3, recall 1/1 -> 2*(1/3)/(4/3) = 1/2.
    assert squad_eval.f1("sat sat sat", "sat", v2) == pytest.approx(1 / 2)
    # "the cat sat sat" -> [cat, sat, sat] vs [cat, sat, down]: common 2;
    # precision 2/3, recall 2/3 -> 2/3.
    assert squad_eval.f1("the cat sat sat", "cat sat down", v2) == pytest.approx(2 / 3)
    # precision 1/1, recall 1/4 ("the" goes) -> 2*(1/4)/(5/4) = 2/5.
    assert squad_eval.f1("Denver", "the Denver Broncos of Colorado", v2) == pytest.approx(2 / 5)
    assert squad_eval.f1("Broncos", "Panthers", v2) == 0.0  # no common token
    assert squad_eval.f1("", "Denver", v2) == 0.0  # one side empty
    assert squad_eval.f1("Denver", "The", v2) == 0.0


def test_f1_where_both_normalise_to_nothing():
    # v1.1: no common token -> 0, even for two empty answers.
    assert squad_eval.f1("", "", v2=False) == 0.0
    assert squad_eval.f1("the", "A", v2=False) == 0.0
    # v2.0: two no-answers agree -> 1.
    assert squad_eval.f1("", "", v2=True) == 1.0
    assert squad_eval.f1("the", "", v2=True) == 1.0


def test_gold_answers():
    assert squad_eval.gold_answers(["the", "Denver"], v2=False) == ["the", "Denver"]
    assert squad_eval.gold_answers(["the", "Denver"], v2=True) == ["Denver"]
    assert squad_eval.gold_answers(["The", "an"], v2=True) == [""]
    assert squad_eval.gold_answers([], v2=True) == [""]


def _squad(version, answers):
    """A SQuAD file with the questions {id: [answer texts]}; in v2.0 those
    without answers are is_impossible."""
    qas = [
        {
            "id": qid,
            "question": "?",
            "answers": [{"text": text, "answer_start": 0} for text in texts],
            **({"is_impossible": not texts} if version.startswith("v2") else {}),
        }
        for qid, texts in answers.items()
    ]
    return {"version": version, "data": [{"paragraphs": [{"context": "c", "qas": qas}]}]}


def test_is_v2():
    assert not squad_eval.is_v2(_squad("1.1", {"q": ["x"]}))
    assert squad_eval.is_v2(_squad("v2.0", {"q": ["x"]}))
    assert squad_eval.is_v2({"version": "2.0", "data": []})
    unversioned = _squad("v2.0", {"q": []})
    del unversioned["version"]
    assert squad_eval.is_v2(unversioned)  # by its is_impossible question


V1 = {
    "q1": ["Denver Broncos", "the Broncos"],
    "q2": ["The"],
    "q3": ["the", "Santa Clara"],
    "q4": ["A"],
    "q5": ["Levi's Stadium"],
}


def test_v1_rules():
    predictions = {"q1": "Broncos", "q2": "a", "q3": "Santa Clara, California", "q4": "Denver"}
    figures, missing = squad_eval.evaluate(_squad("1.1", V1), predictions)
    # q1: EM max(0, 1) = 1 ("the Broncos" -> "broncos");
    #     F1 max(vs [denver, broncos]: precision 1, recall 1/2 -> 2/3; 1) = 1.
    # q2: gold "The" kept; "a" and "The" both normalise to "": EM 1, F1 0.
    # q3: EM 0; F1 max(vs "the": 0; [santa, clara, california] vs [santa, clara]:
    #     precision 2/3, recall 1 -> 2*(2/3)/(5/3) = 4/5) = 4/5.
    # q4: gold "A" kept; "Denver" against it: EM 0, F1 0.
    # q5: no prediction: 0 and 0, still counted.
    # EM 100*(1+1+0+0+0)/5 = 40; F1 100*(1+0+4/5+0+0)/5 = 36.
    assert figures == {"exact_match": pytest.approx(40.0), "f1": pytest.approx(36.0)}
    assert missing == 1


def test_v1_question_without_answers_cannot_be_scored():
    with pytest.raises(squad_eval.DatasetError, match="'q2' has no answers"):
        squad_eval.evaluate(_squad("1.1", {"q1": ["x"], "q2": []}), {"q1": "x", "q2": ""})


V2 = {
    "h1": ["Denver Broncos"],
    "h2": ["The", "an"],  # all normalise to nothing: HasAns, gold [""]
    "h3": ["the"],
    "h4": ["the", "Santa Clara"],  # gold ["Santa Clara"]
    "n1": [],
    "n2": [],
    "n3": [],
}
V2_PREDICTIONS = {"h1": "Denver", "h2": "", "h3": "Denver", "h4": "the"}
V2_PREDICTIONS.update({"n1": "", "n2": "Denver", "n3": "The"})


def test_v2_rules():
    figures, missing = squad_eval.evaluate(_squad("v2.0", V2), V2_PREDICTIONS)
    # h1: EM 0; F1 precision 1, recall 1/2 -> 2/3.
    # h2: "" against gold [""]: EM 1, F1 1 (both empty agree).
    # h3: "Denver" against gold [""]: EM 0, F1 0.
    # h4: "the" against ["Santa Clara"] ("the" dropped): EM 0, F1 0
    #     (v1.1 would keep "the" and give EM 1).
    # n1: "" against [""]: 1, 1.  n2: "Denver": 0, 0.  n3: "The" -> "": 1, 1.
    # EM (0+1+0+0+1+0+1)/7 = 3/7; F1 (2/3+1+0+0+1+0+1)/7 = (11/3)/7 = 11/21.
    # HasAns h1-h4: EM 1/4, F1 (2/3+1)/4 = 5/12. NoAns n1-n3: EM 2/3, F1 2/3.
    assert missing == 0
    assert figures == pytest.approx(
        {
            "exact": 300 / 7,
            "f1": 1100 / 21,
            "total": 7,
            "HasAns_exact": 25.0,
            "HasAns_f1": 500 / 12,
            "HasAns_total": 4,
            "NoAns_exact": 200 / 3,
            "NoAns_f1": 200 / 3,
            "NoAns_total": 3,
            "exact_match": 300 / 7,
        }
    )
    assert list(figures) == [
        "exact",
        "f1",
        "total",
        "HasAns_exact",
        "HasAns_f1",
        "HasAns_total",
        "NoAns_exact",
        "NoAns_f1",
        "NoAns_total",
        "exact_match",
    ]


def test_v2_threshold_applies_without_no_answer_scores():
    # No scores means 0.0 for each; 0.0 > -1 answers "no answer" everywhere:
    # HasAns h1-h4 score 0 (h2 too, though its raw score is 1), NoAns 1.
    figures, _ = squad_eval.evaluate(_squad("v2.0", V2), V2_PREDICTIONS, None, -1.0)
    assert figures["exact"] == figures["f1"] == pytest.approx(300 / 7)
    assert figures["HasAns_f1"] == 0.0 and figures["NoAns_f1"] == 100.0
    assert "best_f1" not in figures


# SQuAD 2.0 questions, their predictions and no-answer scores (in file order).
BEST = {
    "d": ([], "the", 0.05),  # raw EM 1, F1 1 ("the" -> "")
    "a": (["Denver Broncos"], "Denver Broncos", 0.1),  # raw EM 1, F1 1
    "b": (["Santa Clara"], "Santa Clara, California", 0.3),  # raw EM 0, F1 4/5
    "c": ([], "Denver", 0.3),  # raw 0, 0
    "e": (["Levi's Stadium"], "Stadium", 0.8),  # raw EM 0, F1 2/3
    "f": ([], "", 0.9),  # raw 1, 1
}


def _best_case(order=tuple(BEST)):
    dataset = _squad("v2.0", {qid: BEST[qid][0] for qid in BEST})
    predictions = {qid: BEST[qid][1] for qid in BEST}
    na_probs = {qid: BEST[qid][2] for qid in order}
    return dataset, predictions, na_probs


def test_v2_no_answer_threshold():
    figures, _ = squad_eval.evaluate(*_best_case(), 0.3)
    # Above 0.3 (strictly: b and c at 0.3 keep their raw scores): e and f
    # answer "no answer": e (HasAns) 0, f (NoAns) 1.
    # EM: d 1, a 1, b 0, c 0, e 0, f 1 -> 3/6 = 50.
    # F1: d 1, a 1, b 4/5, c 0, e 0, f 1 -> (19/5)/6 = 19/30.
    # HasAns a, b, e: EM 1/3, F1 (1+4/5+0)/3 = 3/5. NoAns c, d, f: EM 2/3, F1 2/3.
    assert figures["exact"] == pytest.approx(50.0)
    assert figures["f1"] == pytest.approx(1900 / 30)
    assert figures["HasAns_exact"] == pytest.approx(100 / 3)
    assert figures["HasAns_f1"] == pytest.approx(60.0)
    assert figures["NoAns_exact"] == figures["NoAns_f1"] == pytest.approx(200 / 3)
    below, _ = squad_eval.evaluate(*_best_case(), 0.2)
    # Also b -> 0 and c -> 1: EM = F1 = (1+1+0+1+0+1)/6 = 4/6.
    assert below["exact"] == below["f1"] == pytest.approx(400 / 6)


def test_v2_best_threshold():
    figures, _ = squad_eval.evaluate(*_best_case())
    # Start: "no answer" everywhere, the 3 NoAns questions right: 3.
    # Exact, by rising score: d 3-1 = 2 (its prediction "the" is not "",
    # though it scored 1), a 2+1 = 3 (not above 3), b 3+0, c 3-1 = 2, e 2+0,
    # f 2-0 = 2. Never above the start: best 3/6 = 50 at 0.0.
    assert figures["best_exact"] == pytest.approx(50.0)
    assert figures["best_exact_thresh"] == 0.0
    # F1: d 2, a 3, b 3+4/5 = 19/5 (best, at b's 0.3), c 14/5, e 14/5+2/3, f.
    # Best (19/5)/6 = 19/30 at 0.3.
    assert figures["best_f1"] == pytest.approx(1900 / 30)
    assert figures["best_f1_thresh"] == 0.3


def test_v2_best_threshold_ties_follow_the_scores_file():
    # c before b (both 0.3): d 2, a 3, c 2, b 2+4/5 = 14/5, e 14/5+2/3 =
    # 52/15 (about 3.47, the first above 3: best, at e's 0.8), f 52/15.
    # Best (52/15)/6.
    figures, _ = squad_eval.evaluate(*_best_case(order="dacbef"))
    assert figures["best_f1"] == pytest.approx(100 * (52 / 15) / 6)
    assert figures["best_f1_thresh"] == 0.8


def test_v1_missing_predictions_score_zero():
    figures, missing = squad_eval.evaluate(_squad("1.1", {"q1": ["x"], "q2": ["y"]}), {"q1": "x"})
    # q1 1, q2 unanswered 0: 1/2, as the v1.1 script's "score 0".
    assert figures == {"exact_match": 50.0, "f1": 50.0} and missing == 1


def test_v2_missing_predictions_score_zero():
    # The v2.0 script cannot score this (KeyError); here a question left
    # out scores 0 in every figure, whatever its no-answer score.
    dataset = _squad("v2.0", {"a": ["Denver"], "n": [], "m": []})
    predictions, na_probs = {"a": "Denver", "m": ""}, {"a": 0.1, "n": 0.9, "m": 0.2}
    figures, missing = squad_eval.evaluate(dataset, predictions, na_probs, 0.5)
    # a 1, n 0 (not 1, though 0.9 > 0.5), m 1 -> 2/3.
    assert missing == 1
    assert figures["exact"] == figures["f1"] == pytest.approx(200 / 3)
    assert figures["total"] == 3
    assert figures["HasAns_exact"] == 100.0 and figures["NoAns_exact"] == 50.0
    # Best: start 1 (m, the NoAns with a prediction), a 2 (best, at 0.1),
    # m 2-0 = 2: 2/3.
    assert figures["best_exact"] == pytest.approx(200 / 3)
    assert figures["best_exact_thresh"] == 0.1


def test_command(tmp_path):
    data, predictions = tmp_path / "dev.json", tmp_path / "predictions.json"
    data.write_text(json.dumps(_squad("1.1", V1)))
    predictions.write_text(json.dumps({"q1": "the broncos", "q3": "Santa Clara", "q4": "A"}))
    result = subprocess.run(
        [sys.executable, "-m", "trainers.bert.finetune.squad_eval", str(data), str(predictions)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout)
    # q1 1/1, q3 1/1, q4 EM 1 F1 0 ("A" against "A"), q2 and q5 missing.
    assert figures == {"exact_match": pytest.approx(60.0), "f1": pytest.approx(40.0)}
    assert "2 question(s) without a prediction" in result.stderr


def test_command_v2(tmp_path):
    data, predictions, na_probs = (tmp_path / n for n in ("dev.json", "p.json", "na.json"))
    dataset, answers, scores = _best_case()
    data.write_text(json.dumps(dataset))
    predictions.write_text(json.dumps(answers))
    na_probs.write_text(json.dumps(scores))
    argv = [str(data), str(predictions), "--na-prob-file", str(na_probs), "-t", "0.3"]
    result = subprocess.run(
        [sys.executable, "-m", "trainers.bert.finetune.squad_eval", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == squad_eval.evaluate(dataset, answers, scores, 0.3)[0]


def _command(*argv):
    return subprocess.run(
        [sys.executable, "-m", "trainers.bert.finetune.squad_eval", *map(str, argv)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "which, content, problem",
    [
        ("data", None, "No such file or directory"),
        ("data", "not json", "not valid JSON (line 1, column 1"),
        ("data", '{"version": "1.1"}', "not a SQuAD file (no 'data' list at the top)"),
        ("data", '{"data": [["a"]]}', "not a SQuAD file (an entry is not an object: ['a'])"),
        ("data", '{"data": [{"paragraphs": [{"qas": [{"id": "q1"}]}]}]}', "'q1' has no answers"),
        ("data", '{"data": [{"paragraphs": {"qas": []}}]}', "'paragraphs' is not a list"),
        ("predictions", '{"q1": "x",\n "q2": }', "not valid JSON (line 2, column 8"),
        ("predictions", '["q1"]', "not a {question id: text} object"),
        ("scores", '{"q1": "high"}', "not a {question id: number} object"),
    ],
)
def test_a_file_that_cannot_be_scored_is_one_line_naming_it(tmp_path, which, content, problem):
    files = {n: tmp_path / f"{n}.json" for n in ("data", "predictions", "scores")}
    files["data"].write_text(json.dumps(_squad("1.1", V1)))
    files["predictions"].write_text(json.dumps({"q1": "x"}))
    files["scores"].write_text(json.dumps({"q1": 0.5}))
    if content is None:
        files[which].unlink()
    else:
        files[which].write_text(content)
    result = _command(files["data"], files["predictions"], "--na-prob-file", files["scores"])
    # A data error: status 1, one line naming the file, as the other commands'.
    assert result.returncode == 1 and result.stdout == "", result.stderr
    assert result.stderr.startswith("bert-squad-eval: error: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(files[which]) in result.stderr and problem in result.stderr


def test_a_usage_error_is_one_line_with_status_2(tmp_path):
    result = _command(tmp_path / "dev.json")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("bert-squad-eval: error: the following arguments are required")
    assert "pred_file" in result.stderr and "--help" in result.stderr
