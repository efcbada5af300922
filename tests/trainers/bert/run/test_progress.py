"""The progress line and log record of a host loop, with and without the
gradient noise scale; the phase's and the whole run's ETA."""

import dataclasses
import io
import json

from trainers.bert.model import bert as model
from trainers.bert.run import loop, phases, progress
from trainers.bert.run.progress import LOG, Progress

FIGURES = dict(
    loss=5.0,
    mlm_accuracy=0.1,
    nsp_accuracy=0.6,
    learning_rate=1e-3,
    gradient_norm=1.5,
    sequences_per_second=100.0,
    tokens_per_second=3200.0,
    mfu=None,
    skipped=0,
)


def _line(tmp_path, **extra):
    phase = phases.Phase(seq_length=32, global_batch_size=8, steps=20, peak_learning_rate=1e-3)
    (plan,) = phases.plan([phase], 1, 512)
    stream = io.StringIO()
    progress = Progress(str(tmp_path), 1, tensorboard=False, stream=stream)
    progress.start_phase(plan, 0)
    progress.train(plan, 10, {**FIGURES, **extra})
    progress.close()
    with open(tmp_path / LOG) as f:
        record = json.loads(f.read().splitlines()[-1])
    return stream.getvalue().splitlines()[-1], record


def test_the_noise_scale_is_shown_and_logged_when_measured(tmp_path):
    noise = {"noise_scale": 123.4, "gradient_squared": 0.5, "gradient_variance": 61.7}
    line, record = _line(tmp_path, **noise)
    assert "|g| 1.5  B_noise 123  100.0 seq/s" in line
    assert {k: record[k] for k in noise} == noise


def test_nothing_is_shown_without_it(tmp_path):
    line, record = _line(tmp_path)
    assert "|g| 1.5  100.0 seq/s" in line and "B_noise" not in line
    assert "noise_scale" not in record


def test_the_eta_is_the_phases_and_in_brackets_the_whole_runs(tmp_path, monkeypatch):
    phase = phases.Phase(seq_length=32, global_batch_size=8, steps=20, peak_learning_rate=1e-3)
    (plan,) = phases.plan([phase], 1, 512)
    clock = iter([100.0, 110.0, 200.0, 210.0])  # 10 steps in 10 s, twice
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    lines = []
    for later_steps in (30.0, 0.0):  # 30 steps of this phase's work after it; none
        stream = io.StringIO()
        shown = Progress(str(tmp_path), 1, tensorboard=False, stream=stream, write=False)
        shown.start_phase(plan, 0, later_steps)
        shown.train(plan, 10, FIGURES)
        lines.append(stream.getvalue().splitlines()[-1])
    assert lines[0].endswith("ETA 0:10 (run 0:40)")
    assert lines[1].endswith("ETA 0:10")


def test_later_phases_count_at_this_phases_model_flop_rate():
    first = phases.Phase(seq_length=32, global_batch_size=8, steps=20, peak_learning_rate=1e-3)
    same = dataclasses.replace(first, steps=30)
    double = dataclasses.replace(first, steps=30, global_batch_size=16)  # twice a step's FLOPs
    plans = phases.plan([first, same, double], 1, 512)
    run = loop.Loop(
        None,
        None,
        None,
        None,
        schedule=None,
        config=model.preset("tiny", vocabulary_size=4096),
        plans=plans,
        peak_flops=None,
        preemption=None,
        saved_step=None,
    )
    assert run._later_steps(plans[0]) == 30 + 2 * 30
    assert run._later_steps(plans[1]) == 2 * 30
    assert run._later_steps(plans[2]) == 0
