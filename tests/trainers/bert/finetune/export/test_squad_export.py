"""The fine-tuned SQuAD model as a folder (`answering`) and as a
TensorFlow SavedModel (`span_serving`), each against the predictions.json
of one tiny SQuAD v2.0 run shared by the module's tests."""

import json
import os
import shutil
import statistics

import pytest
import tensorflow as tf

from tests.scripts import run_process
from tests.trainers.bert.finetune.conftest import _encoder, finetune, help_sentences, squad_json
from trainers.bert.data.shards import builtin
from trainers.bert.errors import ConfigError, DataError
from trainers.bert.finetune import predict, spans, squad
from trainers.bert.finetune.export import answering, span_serving
from trainers.bert.formats.tokenizer import Tokenizer

pytestmark = pytest.mark.slow

SETTINGS = dict(max_seq_length=64, doc_stride=16, max_query_length=24)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A few steps of SQuAD v2.0 on help-text questions: (model_dir, dev
    file, the run's predictions, the answering folder it exported).

    The tiny model's no-answer score wins on every question at the default
    threshold: the finished run predicts again with the median of its
    null odds as the threshold, so half the answers are spans, half "", and
    exports its model (the answering folder and the SavedModel)."""
    folder = tmp_path_factory.mktemp("squad")
    encoder = _encoder(folder / "pretraining")
    sentences = help_sentences()
    train_file = squad_json(folder / "train.json", sentences[:32], "v2.0")
    dev_file = squad_json(folder / "dev.json", sentences[32:], "v2.0", impossible_every=3)
    model_dir = folder / "run"
    written = model_dir / "predictions"
    data = dict(task="squad", train_file=train_file, predict_file=dev_file, **SETTINGS)
    summary = finetune(model_dir, encoder, **data)
    odds = json.loads((written / "null_odds.json").read_text())
    threshold = statistics.median(odds.values())
    summary = finetune(model_dir, encoder, null_score_threshold=threshold, export=True, **data)
    predictions = json.loads((written / "predictions.json").read_text())
    assert summary["saved_model"] == str(model_dir / "saved_model")
    return model_dir, dev_file, predictions, summary["export"]


def _dev(dev_file):
    examples = squad.read(dev_file).examples
    return [e.qid for e in examples], [e.question for e in examples], [e.context for e in examples]


def test_answering_folder_answers_as_the_runs_predictions(run):
    _, dev_file, predictions, path = run
    qids, questions, contexts = _dev(dev_file)
    answers = answering.load(path).answer(questions, contexts)
    assert {q: a["answer"] for q, a in zip(qids, answers)} == predictions
    # Both kinds of answer are in the comparison: spans and v2.0's "no answer".
    assert "" in predictions.values() and set(predictions.values()) != {""}
    assert all(isinstance(a["score"], float) for a in answers)
    # The folder is a keras-hub preset (encoder and tokenizer) besides.
    assert {"config.json", "model.weights.h5", "tokenizer.json", answering.HEAD_FILE} <= set(
        os.listdir(path)
    )


def test_the_predict_command_answers_as_the_runs_predictions(run, tmp_path):
    _, dev_file, predictions, path = run
    qids, questions, contexts = _dev(dev_file)
    questions[0] = " ".join(["which"] * 30) + "?"  # longer than max_query_length (24)
    texts = tmp_path / "questions.tsv"
    texts.write_text("".join(f"{q}\t{c}\n" for q, c in zip(questions, contexts)), "utf-8")
    # One batch, as `answer` below: the run's threshold is the median of its
    # null odds, which other batches' rounding can tip for its median questions.
    said = []
    predict.predict(path, str(texts), str(tmp_path / "answers.jsonl"), say=said.append)
    lines = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    expected = answering.load(path).answer(questions, contexts)
    assert [line["answer"] for line in lines] == [a["answer"] for a in expected]
    assert {q: line["answer"] for q, line in zip(qids[1:], lines[1:])} == {
        q: predictions[q] for q in qids[1:]
    }
    assert [line["score"] for line in lines] == pytest.approx([a["score"] for a in expected])
    n = len(questions)
    assert said.count(f"predicted {n} of {n}") == 1
    tokenizer = answering.read(path).encoder.tokenizer
    cut = sum(len(tokenizer.encode(q)[0]) > 24 for q in questions)  # the long one among them
    assert f"{cut} of {n} question(s) are longer than the model's 24 tokens: cut to fit" in said[-2]
    (texts.parent / "bad.tsv").write_text("a question without its context\n")
    with pytest.raises(DataError, match="bad.tsv:1: 1 tab-separated field.s.; the SQuAD span"):
        predict.predict(path, str(texts.parent / "bad.tsv"), str(tmp_path / "x"), say=print)


def _copy(path, folder, without=(), settings=None):
    shutil.copytree(path, folder)
    for name in without:
        os.remove(os.path.join(folder, name))
    if settings is not None:
        with open(os.path.join(folder, answering.SETTINGS_FILE), "w") as f:
            json.dump(settings, f)
    return str(folder)


def test_answering_folder_errors_are_one_line_and_say_what_is_there(run, tmp_path):
    model_dir, _, _, path = run
    values = json.loads(open(os.path.join(path, answering.SETTINGS_FILE)).read())
    classifier = tmp_path / "classifier"
    classifier.mkdir()
    (classifier / "config.json").write_text("{}")
    (classifier / "task.json").write_text(json.dumps({"class_name": "BertTextClassifier"}))
    cases = {
        str(tmp_path / "none"): (ConfigError, "no such folder"),
        str(model_dir): (ConfigError, "a training run's folder"),
        str(classifier): (ConfigError, "keras-hub task preset \\(BertTextClassifier"),
        _copy(path, tmp_path / "encoder", [answering.SETTINGS_FILE]): (
            ConfigError,
            "encoder preset without a span head",
        ),
        _copy(path, tmp_path / "glue", settings={**values, "task": "mrpc"}): (
            ConfigError,
            "of the task 'mrpc', not a SQuAD span model",
        ),
        _copy(path, tmp_path / "old", settings={"task": "squad"}): (ConfigError, "lacks \\["),
        _copy(path, tmp_path / "headless", [answering.HEAD_FILE]): (
            ConfigError,
            "no span_head.weights.h5",
        ),
        _copy(path, tmp_path / "weightless", ["model.weights.h5"]): (
            ConfigError,
            "no model.weights.h5",
        ),
    }
    cut = _copy(path, tmp_path / "cut")
    with open(os.path.join(cut, answering.HEAD_FILE), "r+b") as f:
        f.truncate(100)
    cases[cut] = (DataError, "not a span head's weights")
    for folder, (error, message) in cases.items():
        with pytest.raises(error, match=message) as raised:
            answering.read(folder)
        assert "\n" not in str(raised.value) and folder in str(raised.value)


# A fresh process with TensorFlow alone: Keras, keras-hub and this project
# cannot be imported (`import tensorflow_text` imports Keras for its Keras
# layers, so its ops are registered as `span_serving.register_ops` does).
SERVE = """
import json, sys
for name in ("keras", "keras_hub", "trainers"):
    sys.modules[name] = None
import glob, importlib.util, os
import tensorflow as tf
package = importlib.util.find_spec("tensorflow_text").submodule_search_locations[0]
for library in sorted(glob.glob(os.path.join(package, "python", "ops", "_*.so"))):
    tf.load_op_library(library)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
questions, contexts = json.loads(sys.stdin.read())
out = serve(question=tf.constant(questions), context=tf.constant(contexts))
assert all(sys.modules.get(name) is None for name in ("keras", "keras_hub", "trainers"))
answers, scores = out["answer"].numpy(), out["score"].numpy()
print(json.dumps([[a.decode(), float(s)] for a, s in zip(answers, scores)]))
"""


def test_saved_model_answers_as_the_runs_predictions_without_keras(run, tmp_path):
    model_dir, dev_file, predictions, path = run
    qids, questions, contexts = _dev(dev_file)
    saved = str(model_dir / "saved_model")  # the run's (tests/.../test_serving.py: by a child)
    output = run_process("-c", SERVE, saved, input=json.dumps([questions, contexts]))
    served = json.loads(output)
    assert {q: answer for q, (answer, _) in zip(qids, served)} == predictions
    expected = answering.load(path).answer(questions, contexts)
    assert [s for _, s in served] == pytest.approx(
        [a["score"] for a in expected], rel=1e-5, abs=1e-5
    )
    with pytest.raises(ConfigError, match="not a SQuAD span model"):
        span_serving.write_saved_model(str(tmp_path / "other"), str(run[0]))


def test_serving_tokenizer_differs_from_the_runs_only_where_pinned():
    """tensorflow-text's FastBertTokenizer against the run's tokenizer on
    the built-in vocabulary: the same tokens and the same characters for
    accents (composed or not) and mixed case; NFKC case folding differs
    ("ß" -> "ss", the ligature "ﬁ" -> "fi"): answers on such text can differ."""
    ours = Tokenizer(builtin.KEPT_VOCAB, lowercase=True)
    theirs = span_serving.tokenizer(ours.tokens, lowercase=True)

    def served(text):
        ids, starts, ends = (t[0].numpy() for t in theirs.tokenize_with_offsets([text]))
        data = text.encode()
        return list(ids), [data[s:e].decode() for s, e in zip(starts, ends)]

    def run_tokens(text):
        ids, offsets = ours.encode(text)
        # spans' answers extend over the combining marks after a token
        return list(ids), [text[s : spans._past_marks(text, e)] for s, e in offsets]

    same = ["Café the caFÉS (1998), a x.", "Cafe\u0301 Na\u0308ive", "Return   the VALUE."]
    for text in same:
        assert served(text) == run_tokens(text), text
    for text in ("Straße", "ﬁle"):
        assert served(text)[0] != run_tokens(text)[0], text


@pytest.mark.parametrize(
    "change",
    [
        # v1.1 (always a span), narrow windows, short answers, a cut question.
        dict(version="v1.1", doc_stride=5, max_answer_length=2, max_query_length=4),
        # One n-best entry: the no-answer ranked first leaves no span ("").
        dict(n_best_size=1, null_score_threshold=100.0),
    ],
)
def test_saved_model_decodes_as_answering_under_other_settings(run, tmp_path, change):
    """The graph's windows and decoding against `answering` (the run's own
    code) on the dev set and on edge cases: combining marks, an empty
    question, an empty context, a question longer than max_query_length."""
    _, dev_file, _, path = run
    _, questions, contexts = _dev(dev_file)
    questions += ["What is the cafe\u0301 naïve?", "", "x " * 40 + "long?", "Where?"]
    contexts += ["A cafe\u0301 is naïve; the CAFÉS are.", "Nothing here.", "short", ""]
    values = json.loads(open(os.path.join(path, answering.SETTINGS_FILE)).read())
    folder = _copy(path, tmp_path / "changed", settings={**values, **change})
    expected = answering.load(folder).answer(questions, contexts)
    span_serving._write(str(tmp_path / "saved"), folder)
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures[span_serving.SIGNATURE]
    out = serve(question=tf.constant(questions), context=tf.constant(contexts))
    assert [a.decode() for a in out["answer"].numpy()] == [a["answer"] for a in expected]
    assert out["score"].numpy().tolist() == pytest.approx(
        [a["score"] for a in expected], rel=1e-5, abs=1e-5
    )
