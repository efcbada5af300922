"""Dynamic loss scaling for float16 training, kept by the train step itself
(not `keras.optimizers.LossScaleOptimizer`) because the step checks the
gradients once, after its single all-reduce, for every optimizer.

The rule is Keras' and NVIDIA's: halve the scale on a non-finite step, double
it after `growth_interval` finite steps in a row."""

import tensorflow as tf


class DynamicLossScale(tf.Module):
    def __init__(self, initial_scale=2.0**15, growth_interval=2000):
        super().__init__(name="loss_scale")
        on_read = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.scale = tf.Variable(float(initial_scale), trainable=False, aggregation=on_read)
        self.good_steps = tf.Variable(
            0, dtype=tf.int64, trainable=False, aggregation=on_read, name="good_steps"
        )
        self.growth_interval = int(growth_interval)

    def update(self, finite):
        """After a step: grow or shrink the scale (cross-replica context)."""
        grown = self.good_steps + 1 >= self.growth_interval
        new_scale = tf.where(
            finite,
            tf.where(grown, self.scale * 2.0, self.scale),
            tf.maximum(self.scale / 2.0, 1.0),
        )
        new_good = tf.where(finite & ~grown, self.good_steps + 1, tf.zeros_like(self.good_steps))
        self.scale.assign(new_scale)
        self.good_steps.assign(new_good)


class NoLossScale:
    """float32 and bfloat16: scale 1, nothing to update."""

    scale = 1.0

    def update(self, finite):
        pass
