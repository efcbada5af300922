"""The fine-tuning program end to end on a tiny encoder: GLUE-format and
SQuAD-format data written by the tests, prediction files, scores, resume
after a preemption, and refusals before compute."""

import json
import os
import sys

import numpy as np
import pytest

from tests.scripts import SignalOnFirstProgress, run_process
from tests.trainers.bert.finetune.conftest import finetune, help_sentences, squad_json
from trainers.bert.data.shards import builtin
from trainers.bert.errors import ConfigError
from trainers.bert.finetune import glue, squad_eval
from trainers.bert.model import bert as model_lib
from trainers.bert.run.preemption import EXIT_STATUS

pytestmark = pytest.mark.slow


def test_glue_task_on_two_replicas_scores_and_writes_the_submission(
    tmp_path, encoder, mrpc_dir, two_cpus
):
    summary = finetune(tmp_path, encoder, task="mrpc", data_dir=mrpc_dir, strategy=two_cpus)
    pairs = len(glue.read(glue.task("mrpc"), os.path.join(mrpc_dir, "train.tsv")))
    assert summary["step"] == -(-pairs // 8)  # one epoch
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(results["dev"]) == {"f1", "accuracy"} and results["step"] == summary["step"]
    assert 0.0 <= results["dev"]["accuracy"] <= 1.0
    submission = (tmp_path / "predictions" / "MRPC.tsv").read_text().splitlines()
    assert submission[0] == "index\tprediction" and [
        r.split("\t")[0] for r in submission[1:]
    ] == list("01234")
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {"kind": "eval", "set": "dev", "step": summary["step"], **results["dev"]} in logged
    # A restart of the finished run predicts again with the same weights.
    again = finetune(tmp_path, encoder, task="mrpc", data_dir=mrpc_dir, strategy=two_cpus)
    assert again["results"] == {"dev": results["dev"]}


def test_squad_preempted_and_resumed_ends_with_the_uninterrupted_weights(
    tmp_path, encoder, monkeypatch
):
    sentences = help_sentences()
    train_file = squad_json(tmp_path / "train.json", sentences[:32], "v2.0", impossible_every=3)
    dev_file = squad_json(tmp_path / "dev.json", sentences[32:], "v2.0", impossible_every=3)
    settings = dict(
        task="squad",
        train_file=train_file,
        predict_file=dev_file,
        doc_stride=16,
        max_query_length=24,
        epochs=2.0,
    )
    uninterrupted = finetune(tmp_path / "full", encoder, **settings)
    stdout = SignalOnFirstProgress()
    monkeypatch.setattr(sys, "stdout", stdout)
    stopped = finetune(tmp_path / "preempted", encoder, **settings)
    monkeypatch.undo()
    assert stopped["preempted"] and f"exiting with status {EXIT_STATUS}" in stdout.getvalue()
    assert (
        stopped["step"] < uninterrupted["step"]
        and not (tmp_path / "preempted" / "eval_results.json").exists()
    )
    resumed = finetune(tmp_path / "preempted", encoder, **settings)
    assert resumed["step"] == uninterrupted["step"]
    for a, b in zip(resumed["model"].weights, uninterrupted["model"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)
    # The official files, scored by the official interface as by the run.
    folder = tmp_path / "full" / "predictions"
    predictions = json.loads((folder / "predictions.json").read_text())
    null_odds = json.loads((folder / "null_odds.json").read_text())
    assert (
        set(predictions) == set(null_odds) == set(squad_eval.questions(json.load(open(dev_file))))
    )
    output = run_process(
        "-m",
        "trainers.bert.finetune.squad_eval",
        dev_file,
        str(folder / "predictions.json"),
        "--na-prob-file",
        str(folder / "null_odds.json"),
        "--na-prob-thresh",
        "0.0",
    )
    results = json.loads((tmp_path / "full" / "eval_results.json").read_text())["dev"]
    assert json.loads(output) == pytest.approx(results)
    assert {"exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1"} <= set(results)


def test_tpu_branches_predict_every_feature_in_order(tmp_path, encoder, mrpc_dir):
    """The TPU path (per-replica input, resume by skipping, padded
    prediction batches over 2 replicas) against the default strategy."""
    predictions = {}
    for strategy in ("default", "tpu_rehearsal"):
        run_process(
            "-m",
            "trainers.bert.finetune.main",
            f"--encoder={encoder}",
            "--task=mrpc",
            f"--data_dir={mrpc_dir}",
            f"--model_dir={tmp_path / strategy}",
            f"--strategy={strategy}",
            "--gin_param=finetune.max_seq_length = 64",
            "--gin_param=finetune.global_batch_size = 8",
            "--gin_param=finetune.epochs = 1.0",
            "--gin_param=finetune.tensorboard = False",
            timeout=300,
        )
        predictions[strategy] = (tmp_path / strategy / "predictions" / "MRPC.tsv").read_text()
    assert predictions["default"] == predictions["tpu_rehearsal"]


def test_refusals_before_compute(tmp_path, encoder, mrpc_dir):
    with pytest.raises(ConfigError, match="its tokenizer has lowercase=True, lowercase=False"):
        finetune(tmp_path / "a", encoder, task="mrpc", data_dir=mrpc_dir, lowercase=False)
    tokens = open(builtin.KEPT_VOCAB).read().splitlines()
    tokens[-1] = tokens[-1].capitalize()  # a cased vocabulary of the same size
    (tmp_path / "cased.txt").write_text("\n".join(tokens) + "\n")
    with pytest.raises(
        ConfigError, match=r"is cased \(1 tokens with capitals.*set lowercase=False"
    ):
        finetune(
            tmp_path / "a",
            encoder,
            task="mrpc",
            data_dir=mrpc_dir,
            vocab_file=str(tmp_path / "cased.txt"),
        )
    (tmp_path / "short.txt").write_text("\n".join(tokens[:-1]) + "\n")
    with pytest.raises(ConfigError, match=r"its embedding has 4096 rows, the vocabulary .* 4095"):
        finetune(
            tmp_path / "a",
            encoder,
            task="mrpc",
            data_dir=mrpc_dir,
            vocab_file=str(tmp_path / "short.txt"),
        )
    with pytest.raises(ConfigError, match="exceeds the encoder's max_sequence_length=64"):
        finetune(tmp_path / "a", encoder, task="mrpc", data_dir=mrpc_dir, max_seq_length=128)
    with pytest.raises(ConfigError, match="not divisible by micro_batch_size=3"):
        finetune(tmp_path / "a", encoder, task="mrpc", data_dir=mrpc_dir, micro_batch_size=3)
    with pytest.raises(ConfigError, match="choose one of squad, pydoc_topics, cola"):
        finetune(tmp_path / "a", encoder, task="glue")
    assert not (tmp_path / "a").exists()
    # A model_dir holding a pretraining run: refused before the records are written.
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "run.json").write_text(json.dumps({"task": {"name": "pretraining"}}))
    with pytest.raises(ConfigError, match="task.name: 'pretraining' in the run, 'mrpc' now"):
        finetune(tmp_path / "pretrained", encoder, task="mrpc", data_dir=mrpc_dir)
    assert os.listdir(tmp_path / "pretrained") == ["run.json"]
    error = run_process(
        "-m",
        "trainers.bert.finetune.main",
        f"--encoder={tmp_path}",
        "--task=mrpc",
        f"--data_dir={mrpc_dir}",
        f"--model_dir={tmp_path / 'b'}",
        expect_status=2,
    )
    assert error.count("\n") == 1 and f"encoder {tmp_path}: " in error


def test_layer_decay_scales_each_layers_step(tmp_path, encoder, mrpc_dir):
    """One AdamW step with decay d changes transformer layer l by d^(L-l),
    the embeddings by d^(L+1), pooler and head by 1 times the change of the
    same step without decay."""
    settings = dict(task="mrpc", data_dir=mrpc_dir, epochs=0.1, warmup_proportion=0.0)
    plain = finetune(tmp_path / "plain", encoder, **settings)
    decayed = finetune(tmp_path / "decayed", encoder, layer_decay=0.5, **settings)
    assert plain["step"] == decayed["step"] == 1
    backbone = model_lib.build_backbone(
        model_lib.preset("tiny", vocabulary_size=4096, max_sequence_length=64)
    )
    backbone.load_weights(os.path.join(encoder, "model.weights.h5"))
    start = {v.path: v.numpy() for v in backbone.trainable_variables}
    expected = {
        "token_embedding/embeddings": 0.125,
        "transformer_layer_0/feedforward_output_dense/kernel": 0.25,
        "transformer_layer_1/self_attention_layer/query/kernel": 0.5,
        "pooled_dense/kernel": 1.0,
    }
    plain_weights = {v.path: v.numpy() for v in plain["model"].trainable_variables}
    for variable in decayed["model"].trainable_variables:
        if variable.path in expected:
            before = start[variable.path]
            change = plain_weights[variable.path] - before
            assert np.abs(change).max() > 1e-4
            np.testing.assert_allclose(
                variable.numpy() - before, expected[variable.path] * change, rtol=0, atol=1e-7
            )
