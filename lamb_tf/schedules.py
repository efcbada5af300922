"""Learning-rate schedules of the paper's recipe.

- `WarmupPolynomialDecay`: linear warmup from 0, then polynomial decay to an
  end value (the BERT and LAMB recipes; NVIDIA's uses power 0.5).
- `MultiPhaseSchedule`: phases back to back, each restarting its own warmup
  (the paper's mixed-batch recipe: 128-token phase, then 512-token phase).
- `sqrt_batch_scaling`: the square-root rule for the learning rate when the
  batch grows.
"""

import math

import keras
from keras import ops

from lamb_tf import validation


@keras.saving.register_keras_serializable(package="lamb_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """eta(t) = peak * t / W for t < W, then
    peak' (1 - (t - W) / (T - W))^power + end, with peak' = peak - end,
    held at `end_learning_rate` from t = T on.

    Args:
        peak_learning_rate: the rate at the end of warmup.
        total_steps: T, the schedule's length, warmup included.
        warmup_steps: W, steps of linear warmup from 0 (0: none).
        power: of the decay (1 linear, 0.5 NVIDIA's BERT recipe).
        end_learning_rate: the rate at T and after.
    """

    def __init__(
        self,
        peak_learning_rate,
        total_steps,
        warmup_steps=0,
        power=1.0,
        end_learning_rate=0.0,
        name=None,
    ):
        peak_learning_rate = validation.non_negative("peak_learning_rate", peak_learning_rate)
        power = validation.positive("power", power)
        end_learning_rate = validation.non_negative("end_learning_rate", end_learning_rate)
        validation.number("total_steps", total_steps, "an integer >= 1")
        validation.number("warmup_steps", warmup_steps, "an integer >= 0")
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(
                f"`total_steps` must be an integer >= 1. Received: total_steps={total_steps}"
            )
        if int(warmup_steps) != warmup_steps or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                "`warmup_steps` must be an integer in [0, total_steps="
                f"{total_steps}]. Received: warmup_steps={warmup_steps}"
            )
        if not 0 <= end_learning_rate <= peak_learning_rate:
            raise ValueError(
                "`end_learning_rate` must be in [0, peak_learning_rate="
                f"{peak_learning_rate}]. Received: end_learning_rate={end_learning_rate}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.power = float(power)
        self.end_learning_rate = float(end_learning_rate)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - warmup) / decay_steps, 0.0, 1.0)
        decayed = (self.peak_learning_rate - self.end_learning_rate) * ops.power(
            1.0 - progress, self.power
        ) + self.end_learning_rate
        if self.warmup_steps == 0:
            return decayed
        warming = self.peak_learning_rate * step / warmup
        return ops.where(step < warmup, warming, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "power": self.power,
            "end_learning_rate": self.end_learning_rate,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="lamb_tf")
class MultiPhaseSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Phases back to back: phase k runs its own schedule on the step count
    since the phase began, for `total_steps` of that phase; so each phase
    warms up again from 0. After the last phase, its final rate holds.

    Args:
        phases: a list of `WarmupPolynomialDecay` (or their configs).
    """

    def __init__(self, phases, name=None):
        phases = [
            p if isinstance(p, WarmupPolynomialDecay) else _phase_from_config(p) for p in phases
        ]
        if not phases:
            raise ValueError("`phases` must hold at least one schedule. Received: []")
        self.phases = phases
        self.boundaries = []
        start = 0
        for phase in phases:
            self.boundaries.append(start)
            start += phase.total_steps
        self.total_steps = start
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = self.phases[0](step)
        for start, phase in zip(self.boundaries[1:], self.phases[1:]):
            rate = ops.where(step >= start, phase(step - start), rate)
        return rate

    def get_config(self):
        return {"phases": [p.get_config() for p in self.phases], "name": self.name}


def _phase_from_config(config):
    if isinstance(config, dict) and "config" in config:
        return keras.saving.deserialize_keras_object(config)
    if isinstance(config, dict):
        return WarmupPolynomialDecay(**config)
    raise ValueError(
        f"Each phase must be a WarmupPolynomialDecay or its config dict. Received: {config!r}"
    )


def sqrt_batch_scaling(base_learning_rate, base_batch_size, batch_size):
    """The square-root rule: eta = eta_base * sqrt(batch / base_batch), i.e.
    x sqrt(2) per doubling of the batch."""
    if base_batch_size <= 0 or batch_size <= 0:
        raise ValueError(
            "Batch sizes must be > 0. Received: "
            f"base_batch_size={base_batch_size}, batch_size={batch_size}"
        )
    base_learning_rate = validation.non_negative("base_learning_rate", base_learning_rate)
    return base_learning_rate * math.sqrt(batch_size / base_batch_size)
