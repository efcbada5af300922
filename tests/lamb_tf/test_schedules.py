import json
import math

import keras
import numpy as np
import pytest

from lamb_tf import schedules


def _rates(schedule, steps):
    return keras.ops.convert_to_numpy(schedule(np.asarray(steps))).tolist()


def test_warmup_then_polynomial_decay():
    s = schedules.WarmupPolynomialDecay(1.0, total_steps=10, warmup_steps=4, power=0.5)
    got = _rates(s, range(12))
    want = [t / 4 for t in range(4)] + [math.sqrt(1 - (t - 4) / 6) for t in range(4, 10)]
    want += [0.0, 0.0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_end_learning_rate_and_no_warmup():
    s = schedules.WarmupPolynomialDecay(1.0, total_steps=4, power=1.0, end_learning_rate=0.2)
    np.testing.assert_allclose(_rates(s, range(6)), [1.0, 0.8, 0.6, 0.4, 0.2, 0.2], rtol=1e-6)


def test_multi_phase_restarts_warmup_at_each_boundary():
    phase1 = schedules.WarmupPolynomialDecay(6e-3, total_steps=10, warmup_steps=3, power=0.5)
    phase2 = schedules.WarmupPolynomialDecay(4e-3, total_steps=5, warmup_steps=2, power=0.5)
    s = schedules.MultiPhaseSchedule([phase1, phase2])
    got = _rates(s, range(17))
    want = _rates(phase1, range(10)) + _rates(phase2, range(5)) + _rates(phase2, [5, 6])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[10] == 0.0 and got[11] == pytest.approx(2e-3)  # warmup again from zero
    assert s.boundaries == [0, 10] and s.total_steps == 15


def test_schedules_serialise():
    s = schedules.MultiPhaseSchedule(
        [
            schedules.WarmupPolynomialDecay(6e-3, 7038, 2000, power=0.5),
            schedules.WarmupPolynomialDecay(4e-3, 1563, 200, power=0.5),
        ]
    )
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(s)))
    restored = keras.saving.deserialize_keras_object(config)
    steps = [0, 100, 2000, 7037, 7038, 7100, 8600]
    np.testing.assert_allclose(_rates(restored, steps), _rates(s, steps), rtol=1e-6)


def test_sqrt_batch_scaling():
    assert schedules.sqrt_batch_scaling(1e-3, 512, 2048) == pytest.approx(2e-3)
    assert schedules.sqrt_batch_scaling(1e-3, 512, 1024) == pytest.approx(1e-3 * math.sqrt(2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(peak_learning_rate=-1.0, total_steps=5), "peak_learning_rate.*-1.0"),
        (dict(peak_learning_rate=1.0, total_steps=0), "total_steps.*0"),
        (dict(peak_learning_rate=1.0, total_steps=5, warmup_steps=6), "warmup_steps.*6"),
        (dict(peak_learning_rate=1.0, total_steps=5, power=0.0), "power.*0.0"),
        (dict(peak_learning_rate=1.0, total_steps=5, end_learning_rate=2.0), "end_learning_rate"),
        (dict(peak_learning_rate=float("nan"), total_steps=5), "peak_learning_rate=nan"),
        (dict(peak_learning_rate=float("inf"), total_steps=5), "peak_learning_rate=inf"),
        (dict(peak_learning_rate=1.0, total_steps=float("inf")), "total_steps=inf"),
        (dict(peak_learning_rate=1.0, total_steps=5, power=float("nan")), "power=nan"),
    ],
)
def test_bad_schedule_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        schedules.WarmupPolynomialDecay(**kwargs)


def test_bad_batch_sizes():
    with pytest.raises(ValueError, match="batch_size=0"):
        schedules.sqrt_batch_scaling(1e-3, 512, 0)
    with pytest.raises(ValueError, match="base_learning_rate=nan"):
        schedules.sqrt_batch_scaling(float("nan"), 512, 1024)
    with pytest.raises(ValueError, match="at least one"):
        schedules.MultiPhaseSchedule([])
