"""What the fine-tuning tests share: tiny encoders, GLUE- and SQuAD-format
data written from the built-in help texts, and a run with small settings."""

import json
import re
import types

import numpy as np
import pytest

from trainers.bert.data.shards import builtin, corpus
from trainers.bert.finetune import datasets, glue, heads
from trainers.bert.finetune import train as finetune_lib
from trainers.bert.finetune.export import task_preset
from trainers.bert.formats import export, preset
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
    export=False,  # the export's own tests turn it on
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


# ------------------------------------------------------ exported classifiers


@pytest.fixture(scope="session")
def mrpc_export(tmp_path_factory):
    """Two steps of MRPC on a tiny encoder (8 dev pairs, one cut to the
    sequence length), exported by the run: its dev examples, its own dev
    logits as its scorer received them, the classifier folder and the
    SavedModel it wrote, the encoder and the trained model. Shared by the
    export, serving and predict tests."""
    folder = tmp_path_factory.mktemp("mrpc_export")
    encoder = _encoder(folder / "pretraining")
    data_dir = folder / "MRPC"
    data_dir.mkdir()
    sentences = help_sentences()
    rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for i, s in enumerate(sentences[:23]):
        rows.append(f"{i % 2}\t{i}\t{i + 1}\t{s}\t{s if i % 2 else sentences[i + 1]}")
    # A dev pair of several sentences each: longer than the sequence, cut.
    rows.append(f"0\t0\t0\t{' '.join(sentences[:5])}\t{' '.join(sentences[5:10])}")
    (data_dir / "train.tsv").write_text("\n".join(rows[:17]) + "\n")  # 16 pairs: 2 steps
    (data_dir / "dev.tsv").write_text("\n".join(rows[:1] + rows[17:]) + "\n")  # 8 pairs
    scored, original = [], glue.score

    def score(task, labels, logits):
        scored.append(np.asarray(logits))
        return original(task, labels, logits)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(glue, "score", score)  # the run's dev logits, as scored
        summary = finetune(
            folder / "run", encoder, task="mrpc", data_dir=str(data_dir), export=True
        )
    (dev,) = scored
    path = summary["export"]
    assert path == str(folder / "run" / "export")
    examples = glue.read(glue.TASKS["mrpc"], str(data_dir / "dev.tsv"))
    return types.SimpleNamespace(
        examples=examples,
        logits=dev,
        path=path,
        saved_model=summary["saved_model"],
        encoder=encoder,
        model=summary["model"],
    )


def features_as_inputs(features, seq_length):
    """The encoder's inputs of (token ids, segment ids, labels) features,
    zero-padded as the run's records."""
    inputs = {n: np.zeros((len(features), seq_length), np.int32) for n in heads.ENCODER_INPUTS}
    for row, (token_ids, segment_ids, _) in enumerate(features):
        inputs["token_ids"][row, : len(token_ids)] = token_ids
        inputs["segment_ids"][row, : len(token_ids)] = segment_ids
        inputs["padding_mask"][row, : len(token_ids)] = 1
    return inputs


@pytest.fixture(scope="session")
def stsb_export(tmp_path_factory, mrpc_export):
    """A regression head (STS-B's) on the MRPC run's tiny encoder, exported
    untrained: (pairs, the Keras model's scores of the trainer's own
    features, the classifier folder)."""
    source = preset.read(mrpc_export.encoder)
    head = heads.Classification(None, weights=source.weights)
    model = head.build(source.config)
    examples = [glue.Example(str(i), e.texts, 0.0) for i, e in enumerate(mrpc_export.examples)]
    length = SMALL["max_seq_length"]
    features = datasets.pair_features(examples, source.tokenizer, length)
    scores = np.asarray(model(features_as_inputs(features, length), training=False)["logits"])
    folder = tmp_path_factory.mktemp("stsb_export")
    path = task_preset.write(
        str(folder / "classifier"), model, head, source.tokenizer, length, None, "stsb"
    )
    return types.SimpleNamespace(examples=examples, scores=scores[:, 0], path=path)
