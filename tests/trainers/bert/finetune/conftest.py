"""What the fine-tuning tests share: tiny encoders, GLUE- and SQuAD-format
data written from the built-in help texts, and a run with small settings."""

import json
import re

import pytest

from trainers.bert.data.shards import builtin, corpus
from trainers.bert.finetune import train as finetune_lib
from trainers.bert.formats import export
from trainers.bert.model import bert as model_lib

# finetune()'s settings besides the task's.
SMALL = dict(
    max_seq_length=64,
    global_batch_size=8,
    epochs=1.0,
    learning_rate=1e-3,
    steps_per_loop=2,
    checkpoint_every=4,
    tensorboard=False,
)


def _encoder(folder, **config):
    """A tiny random encoder as a keras-hub preset with the built-in
    vocabulary (what a pretraining run exports)."""
    config = model_lib.preset("tiny", vocabulary_size=4096, max_sequence_length=64, **config)
    return export.export_encoder(str(folder), model_lib.build_backbone(config), builtin.KEPT_VOCAB)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return _encoder(tmp_path_factory.mktemp("pretraining"))


@pytest.fixture(scope="module")
def still_encoder(tmp_path_factory):
    """Without dropout: runs on the two engines (whose random numbers
    differ) then compute the same function."""
    return _encoder(tmp_path_factory.mktemp("pretraining"), dropout=0.0)


def help_sentences():
    topics = corpus.builtin_topics()
    return [s for key in sorted(topics)[:6] for s in corpus.topic_sentences(topics[key])[:8]]


@pytest.fixture(scope="module")
def mrpc_dir(tmp_path_factory):
    """MRPC in GLUE's layout: pairs of help-text sentences, paraphrase (1)
    when the second is the first's own words; 23 dev rows (not a multiple
    of any batch: the last prediction batch is padded)."""
    sentences = help_sentences()
    rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for i, s in enumerate(sentences[:-1]):
        same = i % 2
        rows.append(f"{same}\t{i}\t{i + 1}\t{s}\t{s if same else sentences[i + 1]}")
    folder = tmp_path_factory.mktemp("glue") / "MRPC"
    folder.mkdir()
    (folder / "train.tsv").write_text("\n".join(rows) + "\n")
    (folder / "dev.tsv").write_text("\n".join(rows[:24]) + "\n")
    test = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    test += [f"{i}\t0\t0\t{s}\t{s}" for i, s in enumerate(sentences[:5])]
    (folder / "test.tsv").write_text("\n".join(test) + "\n")
    return str(folder)


def squad_json(path, sentences, version="1.1", impossible_every=0):
    """Questions on help-text passages: a sentence with its longest word
    replaced by "what"; the answer is that word in the passage."""
    paragraphs = []
    for p in range(0, len(sentences) - 3, 4):
        context = " ".join(sentences[p : p + 4])
        qas = []
        for s in sentences[p : p + 4]:
            word = max(re.findall(r"[A-Za-z]{4,}", s) or ["the"], key=len)
            start = context.index(s) + s.index(word)
            qid = f"q{p}-{len(qas)}"
            if impossible_every and len(qas) % impossible_every == 0:
                qas.append({"id": qid, "question": "Why?", "answers": [], "is_impossible": True})
                continue
            question = s.replace(word, "what", 1)
            qas.append(
                {
                    "id": qid,
                    "question": question,
                    "answers": [{"text": word, "answer_start": start}],
                }
            )
        paragraphs.append({"context": context, "qas": qas})
    path.write_text(
        json.dumps({"version": version, "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    return str(path)


def finetune(model_dir, encoder, **settings):
    return finetune_lib.finetune(str(model_dir), encoder=encoder, **{**SMALL, **settings})
