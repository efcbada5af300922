"""The jobs' settings objects: gin binds them under the jobs' names, a
keyword argument wins over a binding, and a wrong value is named with its
job before anything runs."""

import dataclasses
import glob
import json
import os
import pathlib

import gin
import pytest

from tests.trainers.bert import runs
from trainers.bert.errors import ConfigError
from trainers.bert.finetune.train import FineTuning
from trainers.bert.run import phases as phases_lib
from trainers.bert.run.phases import Phase
from trainers.bert.train import Pretraining

PHASE = Phase(
    seq_length=32, max_predictions=5, global_batch_size=8, steps=2, peak_learning_rate=1e-3
)


@pytest.fixture
def bindings():
    yield gin.parse_config
    gin.clear_config()


def test_gin_binds_the_settings_under_the_jobs_names(bindings):
    bindings(
        """
        train.steps_per_loop = 3
        train.seed = 7
        finetune.task = "pydoc_topics"
        finetune.encoder = "/somewhere/encoder"
        finetune.checkpoint_every = 5
        """
    )
    pretraining = Pretraining(phases=[PHASE], seed=2)
    assert (pretraining.steps_per_loop, pretraining.seed) == (3, 2)  # the keyword wins
    assert pretraining.loop.steps_per_loop == 3
    fine_tuning = FineTuning()
    assert (fine_tuning.task, fine_tuning.checkpoint_every) == ("pydoc_topics", 5)
    assert fine_tuning.keep_checkpoints == 1  # fine-tuning's own default, not pretraining's 3
    assert "train.steps_per_loop = 3" in gin.operative_config_str()


def test_phases_are_required(bindings):
    with pytest.raises(RuntimeError, match="phases"):
        Pretraining()


def test_whole_floats_become_integers():
    pretraining = Pretraining(phases=[PHASE], steps_per_loop=4.0, checkpoint_every=1e2)
    assert pretraining.steps_per_loop == 4 and isinstance(pretraining.steps_per_loop, int)
    assert pretraining.checkpoint_every == 100 and isinstance(pretraining.checkpoint_every, int)


@pytest.mark.parametrize(
    "job, settings, named",
    [
        (Pretraining, {"steps_per_loop": 2.5}, "train.steps_per_loop"),
        (Pretraining, {"precision": "float16"}, "train.precision"),
        (Pretraining, {"clip_norm": float("nan")}, "train.clip_norm"),
        (Pretraining, {"export": "yes"}, "train.export"),
        (Pretraining, {"peak_flops": -1.0}, "train.peak_flops"),
        (FineTuning, {"steps_per_loop": 0}, "finetune.steps_per_loop"),
        (FineTuning, {"max_non_finite_steps": 1.5}, "finetune.max_non_finite_steps"),
        (FineTuning, {"checkpoint_every": -3}, "finetune.checkpoint_every"),
        (FineTuning, {"epochs": 0}, "finetune.epochs"),
        (FineTuning, {"task": "mnli2"}, "finetune.task"),
        # Settings the task does not read: they would be ignored.
        (FineTuning, {"train_file": "train-v1.1.json"}, "finetune.train_file"),
        (FineTuning, {"task": "pydoc_topics", "doc_stride": 64}, "finetune.doc_stride"),
        (FineTuning, {"task": "squad", "data_dir": "glue/RTE"}, "finetune.data_dir"),
    ],
)
def test_a_wrong_value_is_named_with_its_job(job, settings, named):
    required = {"phases": [PHASE]} if job is Pretraining else {"task": "rte", "encoder": "e"}
    with pytest.raises(ConfigError, match=rf"^{named}\b") as refused:
        job(**{**required, **settings})
    if "does not read" in str(refused.value):
        assert f"finetune.task={settings.get('task', 'rte')!r} does not read it" in str(
            refused.value
        )


def _files(folder):
    """{relative path: bytes} of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(pathlib.Path(folder).rglob("*"))
        if p.is_file()
    }


def test_extending_a_finished_run_keeps_its_exports_and_final_checkpoint(
    tmp_path, builtin_data_dir, capsys
):
    runs.train(tmp_path, builtin_data_dir, [runs.phase(steps=2)], checkpoint_every=None)
    finished = {name: _files(tmp_path / name) for name in ("encoder", "google_checkpoint")}
    (checkpoint,) = glob.glob(str(tmp_path / "checkpoints" / "ckpt-2*.index"))
    capsys.readouterr()

    summary = runs.train(tmp_path, builtin_data_dir, [runs.phase(steps=4.0)])

    out = capsys.readouterr().out
    kept = tmp_path / "finished-2"
    assert (
        f"the run in model_dir finished at step 2; these phases ask for 4 steps: 2 more, whose "
        f"exports will replace encoder, google_checkpoint. The finished run's are kept in {kept}"
    ) in out
    assert out.index(str(kept)) < out.index("] 4/4  loss")  # said before any step
    assert summary["step"] == 4
    for name, files in finished.items():
        assert _files(kept / name) == files  # the finished run's, byte for byte
        assert _files(tmp_path / name) != files  # replaced by the extension's
    assert (kept / "checkpoint" / os.path.basename(checkpoint)).read_bytes() == pathlib.Path(
        checkpoint
    ).read_bytes()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["phases"][0]["steps"] == 4 and isinstance(run["phases"][0]["steps"], int)

    # A restart of the extended run keeps what was kept, and reports the
    # figures the run ended with.
    before = _files(kept)
    restarted = runs.train(tmp_path, builtin_data_dir, [runs.phase(steps=4)])
    assert _files(kept) == before
    assert restarted["eval"] == summary["eval"] and restarted["eval"]["loss"] > 0
    assert restarted["train"]["loss"] == summary["train"]["loss"]


def test_a_refused_run_leaves_no_model_dir(tmp_path, builtin_data_dir):
    model_dir = tmp_path / "new" / "run"
    with pytest.raises(ConfigError, match="exceeds the model's max_sequence_length"):
        runs.train(model_dir, builtin_data_dir, [runs.phase(seq_length=4096)])
    assert not model_dir.exists()


def test_whole_phase_counts_are_integers_and_others_are_refused():
    phase = runs.phase(steps=1e3, warmup_steps=10.0, global_batch_size=8.0)
    assert (phase.steps, phase.warmup_steps, phase.global_batch_size) == (1000, 10, 8)
    assert all(isinstance(v, int) for v in (phase.steps, phase.warmup_steps))
    with pytest.raises(ConfigError, match=r"phase 1 \(Phase #0\): steps must be an integer"):
        phases_lib.check([runs.phase(steps=20.5)])


def test_evaluation_settings_without_held_out_data():
    """A target no evaluation can reach is refused; an evaluation interval
    with nothing to evaluate is said. Built-in data brings held-out topics."""
    shards = dataclasses.replace(PHASE, train_files="/data/seq32/*.tfrecord")
    with pytest.raises(ConfigError, match=r"^train.target_mlm_accuracy=0.72: no phase has eval"):
        Pretraining(phases=[shards], target_mlm_accuracy=0.72)
    assert Pretraining(phases=[shards], eval_every=5).notes == [
        "train.eval_every=5: no phase has eval_files, so the run does not evaluate (set "
        "phase1/Phase.eval_files ...)"
    ]
    assert Pretraining(phases=[PHASE], eval_every=5, target_mlm_accuracy=0.72).notes == []
