"""Recovery from bad host loops: non-finite steps, loss spikes, and the
roll-back to the newest good checkpoint.

After every host loop the loop asks one question, `Recovery.check(...)`:
is this result bad? None means go on; otherwise the answer is the cause, and
`Recovery.roll_back(...)` restores the newest checkpoint (weights,
optimizer state, step) while the input goes on past the bad batches, as PaLM
did for its loss spikes: replaying the same batches would fail the same way,
and a transient fault passes either way. A second roll-back to the same
checkpoint stops the run with `TrainingError`.

A loss spike (off by default, `train.loss_spike_factor`) is a host loop
whose mean training loss exceeds `factor` times the mean of the loops before
it, a short window; large-batch runs sometimes see the loss jump and not
come back (PaLM and OPT restarted from before such spikes).
"""

import collections

from trainers.bert import settings
from trainers.bert.errors import TrainingError


class LossSpikes:
    """`check(loss)` -> a description of the spike, or None."""

    def __init__(self, factor, window=10, min_history=3):
        if factor <= 1.0:
            raise ValueError(f"loss_spike_factor must be > 1, got {factor!r}")
        self.factor = factor
        self.min_history = min_history
        self._recent = collections.deque(maxlen=window)

    def check(self, loss):
        recent = self._recent
        if len(recent) >= self.min_history:
            mean = sum(recent) / len(recent)
            if loss > self.factor * mean:
                # Not added: the window keeps describing the run before it.
                return f"loss spike ({loss:.4g} > {self.factor:g} x recent mean {mean:.4g})"
        recent.append(loss)
        return None

    def reset(self):
        """At a phase start, where the loss level changes. (Not after a
        restore: the window then still describes the run before the spike.)"""
        self._recent.clear()


class Recovery:
    """Args:
    max_non_finite_steps: this many skipped (non-finite) steps in a row
        call for a roll-back.
    loss_spike_factor: None (off), or > 1: see `LossSpikes`.
    """

    def __init__(self, max_non_finite_steps=10, loss_spike_factor=None):
        max_non_finite_steps = settings.integer("train.max_non_finite_steps", max_non_finite_steps)
        settings.number("train.loss_spike_factor", loss_spike_factor, above=1.0, optional=True)
        self.max_non_finite_steps = max_non_finite_steps
        self._spikes = LossSpikes(loss_spike_factor) if loss_spike_factor else None
        self._non_finite_in_a_row = 0
        self._restored_from = None  # the checkpoint last rolled back to

    def start_phase(self):
        if self._spikes:
            self._spikes.reset()

    def check(self, steps, loss, skipped, trailing, state_is_finite=None):
        """Is the host loop just run bad? Returns the cause, or None.

        `steps`: steps in the loop; `loss`: their mean training loss;
        `skipped`: how many were non-finite; `trailing`: how many of the last
        ones in a row. `state_is_finite`: a callable checking weights and
        optimizer state (given before a save: a checkpoint never holds a NaN)."""
        if trailing == steps:
            self._non_finite_in_a_row += steps
        else:
            self._non_finite_in_a_row = trailing
        if self._spikes and skipped < steps:
            spike = self._spikes.check(loss)
            if spike:
                return spike
        if state_is_finite is not None and not state_is_finite():
            return "non-finite weights or optimizer state"
        if self._non_finite_in_a_row >= self.max_non_finite_steps:
            return f"{self._non_finite_in_a_row} non-finite steps in a row"
        return None

    def roll_back(self, engine, where, cause, say):
        """Restores the newest checkpoint and returns it; `TrainingError` when
        there is none, or when it is the one restored last time."""
        latest = engine.latest()
        if latest is None:
            raise TrainingError(f"{where}: {cause} and no checkpoint to restore; stopping")
        if latest.path == self._restored_from:
            raise TrainingError(
                f"{where}: {cause} again after restoring {latest.path}; stopping (it is the "
                "newest good checkpoint)"
            )
        say(f"{where}: {cause}; restoring {latest.path}")
        engine.restore(latest)
        self._restored_from = latest.path
        self._non_finite_in_a_row = 0  # the spike window keeps the losses before it
        return latest

    def saved(self):
        """A new checkpoint is the newest good one."""
        self._restored_from = None
