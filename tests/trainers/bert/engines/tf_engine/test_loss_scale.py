"""Dynamic loss scaling: halve on a non-finite step, double after a run of
finite ones."""

import tensorflow as tf

from trainers.bert.engines.tf_engine.loss_scale import DynamicLossScale


def test_scale_halves_on_non_finite_and_grows_after_the_interval():
    scale = DynamicLossScale(initial_scale=8.0, growth_interval=3)
    scale.update(tf.constant(False))
    assert float(scale.scale) == 4.0 and int(scale.good_steps) == 0
    for expected in (4.0, 4.0, 8.0):
        scale.update(tf.constant(True))
        assert float(scale.scale) == expected
    assert int(scale.good_steps) == 0


def test_scale_never_drops_below_one():
    scale = DynamicLossScale(initial_scale=1.0)
    scale.update(tf.constant(False))
    assert float(scale.scale) == 1.0
