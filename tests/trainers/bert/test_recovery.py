import pytest

from trainers.bert.recovery import LossSpikes


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
