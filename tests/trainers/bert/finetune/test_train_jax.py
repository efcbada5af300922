"""Fine-tuning on the JAX engine against the TensorFlow engine from the same
start (an encoder without dropout; the heads' initial weights are NumPy's
draw, the same on both): GLUE through the command on four host devices in
two processes, with layer-wise decay and a padded last prediction batch;
SQuAD v2.0 preempted by SIGTERM and resumed. Each ends with the TensorFlow
engine's weights to float32 rounding (tests/float32.py), and writes the
same prediction files and scores."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import float32
from tests.conftest import requires
from tests.scripts import ROOT, free_ports, run_process
from tests.trainers.bert.finetune.conftest import SMALL, finetune, help_sentences, squad_json
from trainers.bert.finetune import heads
from trainers.bert.formats import preset

requires("jax", "jax")
requires("orbax.checkpoint", "jax")

from trainers.bert.engines.jax_engine.checkpoints import Checkpointer, saved_state  # noqa: E402

pytestmark = pytest.mark.slow

JAX = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
TWO_DEVICES = {**JAX, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def _initial(encoder, head):
    """{path: value} of the trainable weights a run of `head` starts from:
    the encoder's, and the head's draw for the run's seed (0)."""
    source = preset.read(encoder)
    head.weights = source.weights
    model = head.build(source.config)
    return {v.path: v.numpy() for v in model.trainable_variables}


def _assert_same_run(initial, tf_model, jax_weights):
    """The JAX run's weights (a list in the model's order, or {path: value})
    are the TensorFlow run's to float32 rounding."""
    paths = [v.path for v in tf_model.trainable_variables]
    if not isinstance(jax_weights, dict):
        jax_weights = dict(zip(paths, jax_weights))
    assert set(jax_weights) == set(paths) == set(initial)
    expected = {v.path: v.numpy() for v in tf_model.trainable_variables}
    float32.assert_same_weights(initial, expected, jax_weights)


def test_glue_on_four_devices_in_two_processes_equals_the_tf_engine(
    tmp_path, still_encoder, mrpc_dir
):
    # Two input pipelines: the same batches on one worker as on two.
    settings = {**SMALL, "layer_decay": 0.8, "input_pipelines": 2}
    expected = finetune(tmp_path / "tf", still_encoder, task="mrpc", data_dir=mrpc_dir, **settings)
    address = f"127.0.0.1:{free_ports(1)[0]}"
    command = [
        sys.executable,
        "-m",
        "trainers.bert.finetune.main",
        "--engine=jax",
        f"--encoder={still_encoder}",
        "--task=mrpc",
        f"--data_dir={mrpc_dir}",
        "--model_dir=jax",  # relative, as a user types it (orbax takes absolute paths)
        *[f"--gin_param=finetune.{name} = {value!r}" for name, value in settings.items()],
        f"--coordinator_address={address}",
        "--num_processes=2",
    ]
    processes = [
        subprocess.Popen(
            [*command, f"--process_id={index}"],
            cwd=tmp_path,
            env=dict(os.environ, **TWO_DEVICES, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in (1, 0)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "4 CPU device(s) in 2 process(es) (JAX)" in outputs[1]
    state = saved_state(Checkpointer(str(tmp_path / "jax")).latest().path)
    trained = [
        state[f"['trainable'][{i}]"] for i in range(len(expected["model"].trainable_variables))
    ]
    _assert_same_run(_initial(still_encoder, heads.Classification(2)), expected["model"], trained)
    # The dev set's 23 rows: three global batches of 8, the last padded.
    got, want = (
        json.loads((tmp_path / e / "eval_results.json").read_text()) for e in ("jax", "tf")
    )
    assert got == want and got["step"] == expected["step"]
    submissions = [(tmp_path / e / "predictions" / "MRPC.tsv").read_text() for e in ("jax", "tf")]
    assert submissions[0] == submissions[1]


# Fine-tuning on JAX in one process: uninterrupted; preempted by SIGTERM at
# its first progress line; restarted. Each run's weights to ROOT/NAME.npz.
SQUAD = """
import json, sys
import numpy as np
from tests.scripts import SignalOnFirstProgress
from trainers.bert.finetune import train as finetune_lib

root, settings = sys.argv[1], json.loads(sys.argv[2])

def run(folder, name):
    summary = finetune_lib.finetune(f"{root}/{folder}", engine="jax", **settings)
    np.savez(f"{root}/{name}.npz", **{v.path: np.asarray(v) for v in summary["model"].weights})
    return {"step": summary["step"], "preempted": summary["preempted"]}

out = {"full": run("full", "full")}
stdout, sys.stdout = sys.stdout, SignalOnFirstProgress()
out["preempted"] = run("preempted", "preempted")
out["printed"], sys.stdout = sys.stdout.getvalue(), stdout
out["resumed"] = run("preempted", "resumed")
print(json.dumps(out))
"""


def test_squad_on_jax_resumes_exactly_and_equals_the_tf_engine(tmp_path, still_encoder):
    sentences = help_sentences()
    settings = dict(
        SMALL,
        encoder=still_encoder,
        task="squad",
        train_file=squad_json(tmp_path / "train.json", sentences[:32], "v2.0", impossible_every=3),
        predict_file=squad_json(tmp_path / "dev.json", sentences[32:], "v2.0", impossible_every=3),
        doc_stride=16,
        max_query_length=24,
        epochs=2.0,
    )
    output = run_process(
        "-c", SQUAD, str(tmp_path), json.dumps(settings), env=TWO_DEVICES, timeout=600
    )
    runs = json.loads(output.strip().splitlines()[-1])
    full, stopped, resumed = runs["full"], runs["preempted"], runs["resumed"]
    assert stopped["preempted"] and "exiting with status" in runs["printed"]
    assert stopped["step"] < full["step"] == resumed["step"]
    # The resumed run: the uninterrupted one's weights, bit for bit.
    uninterrupted, restarted = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    for name in uninterrupted:
        np.testing.assert_array_equal(restarted[name], uninterrupted[name], err_msg=name)

    del settings["encoder"]
    expected = finetune(tmp_path / "tf", still_encoder, **settings)
    assert expected["step"] == full["step"]
    trained = {k: v for k, v in uninterrupted.items() if k in _paths(expected["model"])}
    _assert_same_run(_initial(still_encoder, heads.Span()), expected["model"], trained)
    tf_folder, jax_folder = tmp_path / "tf" / "predictions", tmp_path / "full" / "predictions"
    got, want = (json.loads((f / "predictions.json").read_text()) for f in (jax_folder, tf_folder))
    assert got == want
    # Each question's no-answer score minus its best span's, from weights
    # within WEIGHTS_RTOL of each other's move: within WEIGHTS_RTOL of their size.
    got, want = (json.loads((f / "null_odds.json").read_text()) for f in (jax_folder, tf_folder))
    assert got.keys() == want.keys()
    want, got = (np.array([odds[k] for k in sorted(want)]) for odds in (want, got))
    np.testing.assert_allclose(got, want, rtol=0, atol=float32.WEIGHTS_RTOL * np.abs(want).max())
    scores = [json.loads((tmp_path / e / "eval_results.json").read_text()) for e in ("full", "tf")]
    assert scores[0] == scores[1]


def _paths(model):
    return {v.path for v in model.trainable_variables}
