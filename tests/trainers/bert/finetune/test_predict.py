"""The prediction command (`predict`) on the exported classifiers: the
run's own dev predictions as JSON lines, the truncation said once, and a
one-line error for each bad folder or input. (On SQuAD's export:
tests/trainers/bert/finetune/export/test_squad_export.py.)"""

import json
import os
import shutil

import numpy as np
import pytest

from tests.scripts import run_process
from trainers.bert.errors import ConfigError, DataError
from trainers.bert.finetune import predict
from trainers.bert.formats import preset

pytestmark = pytest.mark.slow


def _input(path, examples):
    path.write_text("".join("\t".join(e.texts) + "\n" for e in examples), encoding="utf-8")
    return str(path)


def test_the_command_writes_the_runs_dev_predictions(tmp_path, mrpc_export):
    texts = _input(tmp_path / "dev.tsv", mrpc_export.examples)
    output = tmp_path / "out" / "predictions.jsonl"
    stdout = run_process(
        "-m",
        "trainers.bert.finetune.predict",
        f"--model={mrpc_export.path}",
        f"--input={texts}",
        f"--output={output}",
        "--batch_size=3",
        timeout=300,
    )
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    logits = mrpc_export.logits
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert [line["label"] for line in lines] == [["0", "1"][i] for i in logits.argmax(-1)]
    got = [[line["probabilities"][name] for name in ("0", "1")] for line in lines]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    said = stdout.splitlines()
    assert said.count("predicted 8 of 8") == 1 and f"wrote {output}" in said
    tokenizer = preset.read(mrpc_export.encoder).tokenizer
    long = sum(
        sum(len(ids) for ids in tokenizer.encode_batch(e.texts)) + 3 > 64
        for e in mrpc_export.examples
    )
    assert long == 2 and [line for line in said if "longer than" in line] == [
        f"{long} of 8 example(s) are longer than the model's 64 tokens: cut to fit, as in "
        "fine-tuning"
    ]


def test_a_regression_writes_scores(tmp_path, stsb_export):
    texts = _input(tmp_path / "pairs.tsv", stsb_export.examples)
    said = []
    count = predict.predict(stsb_export.path, texts, str(tmp_path / "p.jsonl"), 5, said.append)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert count == len(lines) == len(stsb_export.examples)
    assert all(list(line) == ["score"] for line in lines)
    np.testing.assert_allclose([x["score"] for x in lines], stsb_export.scores, atol=1e-6)


def test_bad_inputs_are_one_line_errors(tmp_path, mrpc_export):
    good = _input(tmp_path / "good.tsv", mrpc_export.examples[:2])
    span = tmp_path / "span"
    shutil.copytree(mrpc_export.path, span)
    (span / "answering.json").write_text("{}")
    incomplete = tmp_path / "incomplete"
    shutil.copytree(mrpc_export.path, incomplete)
    os.remove(incomplete / "model.weights.h5")
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "one.tsv").write_text("first\tsecond\nno pair here\n")
    (tmp_path / "three.tsv").write_text("a\tb\tc\n")
    (tmp_path / "latin1.tsv").write_bytes("a\tb\ncaf\xe9\tb\n".encode("latin-1"))
    out = str(tmp_path / "out.jsonl")
    refusals = [
        (str(span), good, ConfigError, "answering.json is of the task None, not a SQuAD span"),
        (str(incomplete), good, ConfigError, "incomplete, no model.weights.h5"),
        (mrpc_export.encoder, good, ConfigError, "an encoder without a classifier head"),
        (mrpc_export.path, str(tmp_path / "absent.tsv"), DataError, "No such file"),
        (mrpc_export.path, str(tmp_path / "empty.tsv"), DataError, "empty, no text"),
        (
            mrpc_export.path,
            str(tmp_path / "one.tsv"),
            DataError,
            f"{tmp_path / 'one.tsv'}:2: 1 tab-separated field.s.; the mrpc classifier takes "
            "2: text<TAB>text_pair",
        ),
        (mrpc_export.path, str(tmp_path / "three.tsv"), DataError, "three.tsv:1: 3 tab-separated"),
        (mrpc_export.path, str(tmp_path / "latin1.tsv"), DataError, "latin1.tsv:2: not UTF-8"),
    ]
    for model, texts, error, message in refusals:
        with pytest.raises(error, match=message):
            predict.predict(model, texts, out, say=lambda line: None)
    assert not os.path.exists(out)
    stderr = run_process(
        "-m",
        "trainers.bert.finetune.predict",
        f"--model={mrpc_export.path}",
        f"--input={tmp_path / 'one.tsv'}",
        f"--output={out}",
        expect_status=1,
    )
    assert stderr.splitlines() == [
        f"bert-predict: error: {tmp_path / 'one.tsv'}:2: 1 tab-separated field(s); the mrpc "
        "classifier takes 2: text<TAB>text_pair"
    ]


def test_a_single_text_task_reads_a_text_a_line_and_refuses_a_tab(tmp_path):
    layout = "the sst2 classifier takes one text a line"
    (tmp_path / "x.tsv").write_bytes(b"one text\r\n\nlast, no newline")
    assert predict.read_examples(str(tmp_path / "x.tsv"), 1, layout) == [
        ("one text",),
        ("",),  # a blank line is an (empty) example: the output keeps the input's lines
        ("last, no newline",),
    ]
    (tmp_path / "x.tsv").write_text("one text\nsecond\ttext\n")
    with pytest.raises(DataError, match="x.tsv:2: 2 tab-separated field.s.; the sst2 classifier "):
        predict.read_examples(str(tmp_path / "x.tsv"), 1, layout)
