"""Loss-spike detection and the recovery decisions of the host loop."""

import pytest

from trainers.bert.errors import ConfigError, TrainingError
from trainers.bert.run.checkpoint import Checkpoint
from trainers.bert.run.recovery import LossSpikes, Recovery


def test_a_jump_over_the_recent_mean_is_a_spike_and_does_not_enter_the_window():
    spikes = LossSpikes(factor=1.5, window=3, min_history=3)
    for loss in (4.0, 3.8, 3.6):
        assert spikes.check(loss) is None
    assert "loss spike (6 > 1.5 x recent mean 3.8)" in spikes.check(6.0)
    assert spikes.check(5.6) is None  # 5.6 < 1.5 x 3.8: the spike was not counted
    assert spikes.check(5.6) is None  # now the window is 3.8, 3.6, 5.6


def test_no_spike_before_enough_history_or_after_a_reset():
    spikes = LossSpikes(factor=1.5, min_history=3)
    assert spikes.check(1.0) is None and spikes.check(10.0) is None
    spikes.reset()
    for loss in (1.0, 1.0, 1.0):
        assert spikes.check(loss) is None
    assert spikes.check(2.0)


def test_the_factor_must_exceed_one():
    with pytest.raises(ValueError, match="must be > 1, got 1.0"):
        LossSpikes(1.0)


class _Engine:
    """Stands in for the engine's checkpoint calls: `latest` and `restore`."""

    def __init__(self, *paths):
        self.checkpoints = [Checkpoint(p, int(p.rsplit("-", 1)[1]), 0) for p in paths]
        self.restored = []

    def latest(self):
        return self.checkpoints[-1] if self.checkpoints else None

    def restore(self, checkpoint):
        self.restored.append(checkpoint.path)


def test_non_finite_steps_count_across_host_loops_until_the_limit():
    recovery = Recovery(max_non_finite_steps=5)
    assert recovery.check(2, 1.0, skipped=2, trailing=2) is None
    assert recovery.check(2, 1.0, skipped=2, trailing=2) is None  # 4 in a row
    assert recovery.check(2, 1.0, skipped=2, trailing=2) == "6 non-finite steps in a row"


def test_a_finite_step_ends_the_run_of_non_finite_ones():
    recovery = Recovery(max_non_finite_steps=3)
    assert recovery.check(2, 1.0, skipped=2, trailing=2) is None
    assert recovery.check(2, 1.0, skipped=1, trailing=0) is None  # the last one was finite
    assert recovery.check(2, 1.0, skipped=2, trailing=2) is None  # 2 in a row, not 4


def test_non_finite_state_is_checked_only_when_asked():
    recovery = Recovery()
    assert recovery.check(2, 1.0, skipped=0, trailing=0) is None
    cause = recovery.check(2, 1.0, skipped=0, trailing=0, state_is_finite=lambda: False)
    assert cause == "non-finite weights or optimizer state"


def test_spikes_are_judged_only_on_loops_with_finite_steps():
    recovery = Recovery(loss_spike_factor=2.0)
    for _ in range(3):
        assert recovery.check(2, 1.0, skipped=0, trailing=0) is None
    assert recovery.check(2, 9.0, skipped=2, trailing=2) is None  # all skipped: no loss
    assert recovery.check(2, 9.0, skipped=0, trailing=0).startswith("loss spike (9")


def test_roll_back_restores_the_newest_then_refuses_it_twice():
    engine = _Engine("ckpt-4", "ckpt-8")
    recovery = Recovery()
    messages = []
    restored = recovery.roll_back(engine, "phase 1, step 10", "a cause", messages.append)
    assert restored.step == 8 and engine.restored == ["ckpt-8"]
    assert messages == ["phase 1, step 10: a cause; restoring ckpt-8"]
    with pytest.raises(TrainingError, match="a cause again after restoring ckpt-8"):
        recovery.roll_back(engine, "phase 1, step 10", "a cause", messages.append)
    recovery.saved()  # a new checkpoint was written after the restore
    engine.checkpoints.append(Checkpoint("ckpt-12", 12, 0))
    assert recovery.roll_back(engine, "phase 1, step 14", "a cause", messages.append).step == 12


def test_roll_back_without_a_checkpoint_stops():
    with pytest.raises(TrainingError, match="and no checkpoint to restore"):
        Recovery().roll_back(_Engine(), "phase 1, step 2", "a cause", print)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_non_finite_steps": 0}, "train.max_non_finite_steps must be an integer >= 1"),
        ({"loss_spike_factor": 1.0}, "train.loss_spike_factor must be a finite number > 1.0"),
        ({"loss_spike_factor": float("nan")}, "train.loss_spike_factor must be a finite"),
        ({"max_non_finite_steps": 2.5}, "train.max_non_finite_steps must be an integer >= 1"),
        ({"max_non_finite_steps": float("nan")}, "max_non_finite_steps must be an integer"),
    ],
)
def test_settings_are_checked(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Recovery(**kwargs)
