"""Phases: batch plans per replica count, checks that name the setting,
the multi-phase learning rate."""

import pytest

from trainers.bert.errors import ConfigError
from trainers.bert.run.phases import Phase, plan, schedule


def _phase(**overrides):
    settings = dict(seq_length=128, global_batch_size=64, steps=10, peak_learning_rate=1e-3)
    settings.update(overrides)
    return Phase(**settings)


def test_plan_splits_the_global_batch_into_replicas_and_micro_batches():
    plans = plan([_phase(micro_batch_size=8), _phase(seq_length=512, steps=5)], 4, 512)
    assert [(p.per_replica_batch, p.micro_batch, p.accumulation_steps) for p in plans] == [
        (16, 8, 2),
        (16, 16, 1),
    ]
    assert [(p.first_step, p.last_step) for p in plans] == [(0, 10), (10, 15)]


@pytest.mark.parametrize(
    "overrides, replicas, message",
    [
        ({"global_batch_size": 65}, 2, "global_batch_size=65 is not divisible by the 2 replicas"),
        ({"micro_batch_size": 5}, 2, "not divisible by micro_batch_size=5"),
        ({"seq_length": 1024}, 1, "seq_length=1024 exceeds the model's max_sequence_length=512"),
        ({"max_predictions": 200, "seq_length": 128}, 1, "max_predictions=200 exceeds"),
        ({"warmup_steps": 11}, 1, "warmup_steps=11 must be in [0, steps=10]"),
        ({"steps": 0}, 1, "steps must be an integer >= 1"),
        ({"peak_learning_rate": -1.0}, 1, "peak_learning_rate"),
    ],
)
def test_bad_phases_name_the_setting(overrides, replicas, message):
    with pytest.raises(ConfigError, match="phase 2") as error:
        plan([_phase(), _phase(**overrides)], replicas, 512)
    assert message in str(error.value)


def test_no_phases():
    with pytest.raises(ConfigError, match="train.phases is empty"):
        plan([], 1, 512)


def test_learning_rate_warms_up_again_at_each_phase():
    plans = plan(
        [
            _phase(steps=10, warmup_steps=5, peak_learning_rate=1.0),
            _phase(steps=10, warmup_steps=5, peak_learning_rate=0.5),
        ],
        1,
        512,
    )
    rate = [float(schedule(plans)(t)) for t in range(20)]
    assert rate[0] == 0 and rate[5] == pytest.approx(1.0)
    assert rate[10] == 0 and rate[15] == pytest.approx(0.5)
    assert rate[12] == pytest.approx(0.5 * 2 / 5)
