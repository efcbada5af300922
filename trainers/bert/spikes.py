"""Loss-spike detection for the optional rollback (`train.loss_spike_factor`).

Large-batch runs sometimes see the loss jump and not come back; PaLM and
OPT restarted from a checkpoint before the spike and stepped over the
batches around it. A spike here is a host loop whose mean training loss
exceeds `factor` times the mean of the loops before it (a short window)."""

import collections


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
