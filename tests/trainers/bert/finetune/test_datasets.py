"""A task's data as `datasets.load` makes it: the notes on SQuAD files that
do not go together (said before training, never silent)."""

import json

import pytest

from tests.trainers.bert.finetune.test_squad import CONTEXT, _qa, _squad
from trainers.bert.data.shards import builtin
from trainers.bert.finetune import datasets
from trainers.bert.formats.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(builtin.KEPT_VOCAB)


def _file(tmp_path, name, version):
    qas = [_qa("a", "an immutable sequence")]
    if version == "2.0":
        qas.append({"id": "b", "question": "Who?", "answers": [], "is_impossible": True})
    path = tmp_path / name
    path.write_text(json.dumps(_squad(qas, CONTEXT, version)))
    return str(path)


def _notes(tokenizer, train, dev, **options):
    return datasets.load(
        "squad",
        tokenizer,
        64,
        train_file=train,
        predict_file=dev,
        doc_stride=16,
        max_query_length=16,
        **options,
    ).notes


def test_matching_files_bring_no_note(tmp_path, tokenizer):
    train, dev = _file(tmp_path, "train.json", "2.0"), _file(tmp_path, "dev.json", "2.0")
    assert _notes(tokenizer, train, dev, null_score_threshold=-1.0) == []


@pytest.mark.parametrize(
    "versions, said",
    [
        (("1.1", "2.0"), "train_file is SQuAD v1.1 and predict_file v2.0: the model is trained"),
        (("2.0", "1.1"), "train_file is SQuAD v2.0 and predict_file v1.1: predictions are v1.1's"),
    ],
)
def test_versions_that_differ_are_said(tmp_path, tokenizer, versions, said):
    train = _file(tmp_path, "train.json", versions[0])
    dev = _file(tmp_path, "dev.json", versions[1])
    (note,) = _notes(tokenizer, train, dev)
    assert note.startswith(said)


def test_training_on_the_dev_file_and_an_unused_threshold_are_said(tmp_path, tokenizer):
    dev = _file(tmp_path, "dev.json", "1.1")
    same, threshold = _notes(tokenizer, dev, dev, null_score_threshold=1.5)
    assert same.startswith(f"train_file and predict_file are the same file ({dev})")
    assert threshold.startswith("finetune.null_score_threshold=1.5 is not used")
