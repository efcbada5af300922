"""The study's reading of its runs: the best trial of a cell and the critical
batch fitted to steps to target, on runs made up with known answers."""

import pytest

from tools import batch_scaling_report as report


def _cell(batch, steps, accuracy=0.2, noise=None):
    return {
        "batch_size": batch,
        "reached": steps is not None,
        "steps_to_target": steps,
        "mlm_accuracy": accuracy,
        "noise_scale": noise,
    }


def test_the_fit_recovers_the_critical_batch_of_mccandlishs_model():
    cells = [_cell(b, round(1000 * (1 + 256 / b))) for b in (32, 64, 128, 256, 512, 1024)]
    s_min, b_crit = report.critical_batch(cells)
    assert s_min == pytest.approx(1000, rel=0.01)
    assert b_crit == pytest.approx(256, rel=0.01)


def test_misses_are_left_out_and_perfect_scaling_has_no_knee():
    perfect = [_cell(b, 64000 // b) for b in (32, 64, 128, 256)] + [_cell(512, None)]
    s_min, b_crit = report.critical_batch(perfect)
    assert s_min < 1 and b_crit > 1e6  # inf, or past any batch
    assert report.critical_batch([_cell(32, 100), _cell(64, None)]) is None


def test_the_best_trial_is_the_fastest_hit_else_the_most_accurate_miss():
    slow, fast = _cell(64, 300, 0.13), _cell(64, 200, 0.12)
    assert report.best([slow, fast, _cell(64, None, 0.3)]) is fast
    near, far = _cell(64, None, 0.11), _cell(64, None, 0.08)
    assert report.best([far, near]) is near


def test_the_noise_scale_is_the_median_over_measured_hits():
    cells = [_cell(64, 10, noise=100.0), _cell(128, 8, noise=300.0), _cell(256, 7, noise=200.0)]
    cells += [_cell(32, 20), _cell(512, None, noise=5000.0)]
    assert report.noise_scale(cells) == 200.0
    assert report.noise_scale([_cell(32, 20)]) is None
