"""The whole path on real Wikipedia pages (tests/trainers/bert/data/text/
pages: seven articles, a redirect and a disambiguation page, as a dump holds
them): the dump, compressed as Wikimedia publishes it, to text with the
corpus tool, to shards and a vocabulary with the data tool, to a few
training steps, to an encoder that keras-hub loads."""

import bz2
import json

import keras_hub
import numpy as np
import pytest

from tests.scripts import ROOT
from tests.trainers.bert import runs
from trainers.bert.data.shards import create, instances
from trainers.bert.data.text import prepare

PAGES = ROOT / "tests" / "trainers" / "bert" / "data" / "text" / "pages" / "enwiki-sample.xml"
SEQ_LENGTH, MAX_PREDICTIONS = 64, 10


@pytest.mark.slow
def test_a_dump_becomes_text_shards_steps_and_an_encoder(tmp_path):
    # Named as Wikimedia names a part file: the content says it is a dump.
    dump = tmp_path / "enwiki-20160501-pages-articles1.xml-p10p30302.bz2"
    dump.write_bytes(bz2.compress(PAGES.read_bytes()))

    text = tmp_path / "text"
    corpus = prepare.prepare(str(dump), str(text), log=lambda line: None)
    assert corpus["documents"] == 7
    assert corpus["skipped"] == {"redirect": 1, "disambiguation": 1}
    (shard,) = text.glob("*.txt")
    prose = shard.read_text()
    assert "Aruba is a constituent country of the Kingdom of the Netherlands" in prose
    for markup in ("{{", "}}", "[[", "]]", "<ref", "'''"):
        assert markup not in prose

    data = tmp_path / "data"
    options = instances.Options(
        max_seq_length=SEQ_LENGTH, max_predictions_per_seq=MAX_PREDICTIONS, dupe_factor=2
    )
    made = create.create(
        str(text / "*.txt"), str(data), options, vocab_size=2000, num_shards=1, num_workers=1
    )
    assert made["instances"] > 0
    vocabulary = (data / "vocab.txt").read_text().split()
    assert {"aruba", "albedo", "mean"} <= set(vocabulary)

    phase = runs.phase(
        seq_length=SEQ_LENGTH,
        max_predictions=MAX_PREDICTIONS,
        steps=2,
        peak_learning_rate=1e-3,
        train_files=str(data / "*.tfrecord"),
    )
    model_dir = tmp_path / "run"
    summary = runs.train(model_dir, None, [phase], vocab_file=str(data / "vocab.txt"))
    assert summary["step"] == 2 and np.isfinite(summary["train"]["loss"])

    encoder = keras_hub.models.BertBackbone.from_preset(summary["encoder"])
    tokenizer = keras_hub.models.BertTokenizer.from_preset(summary["encoder"])
    tokens = tokenizer(["Aruba is an island."])
    assert encoder.vocabulary_size == len(vocabulary)
    assert json.loads((model_dir / "run.json").read_text())["phases"][0]["steps"] == 2
    assert np.asarray(tokens).max() < len(vocabulary)
