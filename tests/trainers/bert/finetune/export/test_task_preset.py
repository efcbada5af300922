"""The fine-tuned classifier as a keras-hub task preset (`task_preset`):
loaded by keras-hub alone it predicts the run's own dev logits from raw
text; its preprocessor cuts pairs as the run's features; `read` refuses
folders that are not a classifier's export, naming what they are."""

import json
import os
import re
import shutil

import keras_hub
import numpy as np
import pytest

from tests.trainers.bert.finetune.conftest import SMALL, features_as_inputs
from trainers.bert.errors import ConfigError
from trainers.bert.finetune import datasets, glue, heads
from trainers.bert.finetune.export import task_preset
from trainers.bert.formats import preset

pytestmark = pytest.mark.slow


def _columns(examples):
    return tuple(list(texts) for texts in zip(*(e.texts for e in examples)))


def test_keras_hub_predicts_the_runs_dev_logits_from_raw_text(mrpc_export):
    classifier = keras_hub.models.TextClassifier.from_preset(mrpc_export.path)
    assert isinstance(classifier, keras_hub.models.BertTextClassifier)
    logits = classifier.predict(_columns(mrpc_export.examples), batch_size=4, verbose=0)
    # 3e-8 apart measured; the examples' logits spread over 1e-3.
    np.testing.assert_allclose(logits, mrpc_export.logits, rtol=0, atol=1e-6)
    assert (logits.argmax(-1) == mrpc_export.logits.argmax(-1)).all()
    assert json.loads(open(os.path.join(mrpc_export.path, task_preset.LABELS_FILE)).read()) == {
        "task": "mrpc",
        "format": task_preset.FORMAT,
        "labels": ["0", "1"],
        "inputs": ["text", "text_pair"],
    }
    folder = task_preset.read(mrpc_export.path)
    assert (folder.task, folder.labels, folder.pair, folder.max_seq_length) == (
        "mrpc",
        ("0", "1"),
        True,
        SMALL["max_seq_length"],
    )


def test_a_regression_head_predicts_its_scores(stsb_export):
    classifier = keras_hub.models.TextClassifier.from_preset(stsb_export.path)
    scores = classifier.predict(_columns(stsb_export.examples), verbose=0)
    assert scores.shape == (len(stsb_export.examples), 1)
    np.testing.assert_allclose(scores[:, 0], stsb_export.scores, rtol=0, atol=1e-6)
    assert task_preset.read(stsb_export.path).regression


def test_the_preprocessor_cuts_long_pairs_as_the_runs_features(mrpc_export):
    """keras-hub's "round_robin" against the run's longest-first cut,
    google-research/bert's `_truncate_seq_pair`: texts of equal length (the
    second loses a token on a tie), either one longer, odd and even room."""
    tokenizer = preset.read(mrpc_export.encoder).tokenizer
    words = "the file is read and the value is returned by the function".split()

    def text(n):  # n words of the help texts' vocabulary
        return " ".join(words[i % len(words)] for i in range(n))

    lengths = [(40, 40), (41, 40), (40, 41), (31, 32), (5, 90), (90, 5), (60, 0), (30, 29)]
    examples = [glue.Example(str(i), (text(a), text(b))) for i, (a, b) in enumerate(lengths)]
    examples.append(glue.Example("single", (text(100),)))
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(mrpc_export.path)
    for seq_length in (64, 33):  # room 61 and 30 for a pair
        preprocessor.sequence_length = seq_length
        features = datasets.pair_features(examples, tokenizer, seq_length)
        pairs = preprocessor(_columns(examples[:-1]), y=None)
        single = preprocessor(list(examples[-1].texts), y=None)
        for name in heads.ENCODER_INPUTS:
            got = np.concatenate([np.asarray(pairs[name]), np.asarray(single[name])])
            want = features_as_inputs(features, seq_length)[name]
            np.testing.assert_array_equal(got.astype(np.int32), want, err_msg=name)
    assert any(len(t) == 64 for t, _, _ in datasets.pair_features(examples, tokenizer, 64))


def test_read_refuses_what_is_not_a_classifier(tmp_path, mrpc_export):
    def copy(name, without=(), labels=None):
        folder = tmp_path / name
        shutil.copytree(mrpc_export.path, folder)
        for file in without:
            os.remove(folder / file)
        if labels is not None:
            (folder / task_preset.LABELS_FILE).write_text(json.dumps(labels))
        return str(folder)

    span = copy("span")
    (tmp_path / "span" / "answering.json").write_text("{}")
    run = tmp_path / "run"
    shutil.copytree(mrpc_export.encoder, run / "encoder")
    refusals = {
        str(tmp_path / "absent"): "no such folder",
        span: r"a SQuAD span model \(answering.json\), not a classifier",
        mrpc_export.encoder: r"an encoder without a classifier head \(no task.json\)",
        str(run): "a training run's folder",
        copy("no_weights", ["task.weights.h5"]): "incomplete, no task.weights.h5",
        copy("no_labels", [task_preset.LABELS_FILE]): "no labels.json",
        copy("three", labels={"task": "mnli", "labels": ["a", "b", "c"], "inputs": ["text"]}): (
            r"task.json has 2 classes, labels.json the labels \['a', 'b', 'c'\]"
        ),
    }
    for path, message in refusals.items():
        with pytest.raises(ConfigError, match=f"classifier folder {path}: {message}"):
            task_preset.read(path)


def test_write_refuses_labels_that_do_not_fit_the_head(mrpc_export):
    head = heads.Classification(2)
    for names, message in ((["a"], "the head has 2 labels"), (None, "the head has 2 labels")):
        with pytest.raises(ConfigError, match=message):
            task_preset.write("unused", None, head, None, 64, names, "mrpc")
    with pytest.raises(ConfigError, match="a regression head has no label names"):
        task_preset.write("unused", None, heads.Classification(None), None, 64, ["a"], "stsb")
    with pytest.raises(ConfigError, match="'squad': not a classification task"):
        task_preset.write("unused", None, head, None, 64, ["0", "1"], "squad")


def test_each_task_has_its_inputs_and_labels():
    assert task_preset.inputs_of("sst2") == ("text",) == task_preset.inputs_of("pydoc_topics")
    assert task_preset.inputs_of("mnli") == ("text", "text_pair")
    assert task_preset.labels_of("mnli") == ["contradiction", "entailment", "neutral"]
    assert task_preset.labels_of("stsb") is None
    assert len(task_preset.labels_of("pydoc_topics")) == 23


def test_the_readmes_python_runs_on_a_runs_export(mrpc_export):
    """The README's two snippets (keras-hub, then the SavedModel), on the
    MRPC run's folders in place of its MNLI run's: a pair task too."""
    from tests.scripts import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "/runs/mnli_base" in b]
    assert len(blocks) == 2
    run_dir = os.path.dirname(mrpc_export.path)
    names = {}
    for block in blocks:  # the last line's value kept as `result`
        *body, last = block.strip().splitlines()
        exec("\n".join(body + [f"result = {last}"]).replace("/runs/mnli_base", run_dir), names)
    logits, served = np.asarray(names["logits"]), names["result"]
    assert logits.shape == (1, 2)
    np.testing.assert_allclose(served["logits"].numpy(), logits, rtol=0, atol=1e-6)
    assert served["label"].numpy()[0].decode() == ["0", "1"][int(logits.argmax())]
