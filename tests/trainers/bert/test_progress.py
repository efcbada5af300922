"""The progress line and log record of a host loop, with and without the
gradient noise scale."""

import io
import json

from trainers.bert import phases
from trainers.bert.progress import LOG, Progress

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
