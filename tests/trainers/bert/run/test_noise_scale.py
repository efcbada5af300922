"""The gradient noise scale's estimators against gradients drawn with a known
covariance: per-sequence gradients g = G + noise, tr(Sigma) and |G|^2 set."""

import numpy as np
import pytest

from trainers.bert.run import noise_scale
from trainers.bert.run.noise_scale import GradientNoiseScale

DIM, BATCH, PIECES = 64, 32, 4


def _update_norms(rng, gradient, sigma, steps):
    """The engines' per-update figures, summed over `steps` updates: m x the
    pieces' squared norms (each piece's gradient is its sequences' sum / B)
    and the squared norm of the whole batch's mean gradient."""
    small = big = 0.0
    for _ in range(steps):
        per_sequence = gradient + sigma * rng.standard_normal((BATCH, DIM))
        pieces = per_sequence.reshape(PIECES, -1, DIM).sum(1) / BATCH
        small += PIECES * float((pieces**2).sum())
        big += float((pieces.sum(0) ** 2).sum())
    return small, big


def test_the_estimate_recovers_the_noise_scale_it_was_drawn_with():
    rng = np.random.default_rng(0)
    gradient = rng.standard_normal(DIM) * 0.1  # |G|^2 about 0.64
    sigma = 0.5  # tr(Sigma) = 64 x 0.25 = 16: B_simple = 16 / |G|^2
    expected = DIM * sigma**2 / float(gradient @ gradient)
    estimate = GradientNoiseScale(BATCH, PIECES, decay=0.999)
    for _ in range(40):
        figures = estimate.update(*_update_norms(rng, gradient, sigma, 50), steps=50)
    assert figures["noise_scale"] == pytest.approx(expected, rel=0.1)
    assert figures["gradient_variance"] == pytest.approx(DIM * sigma**2, rel=0.05)
    assert figures["gradient_squared"] == pytest.approx(float(gradient @ gradient), rel=0.1)
    # The naive ratio of the two measured squared norms says something else.
    small, big = _update_norms(rng, gradient, sigma, 1)
    assert abs(small / big - expected) > 0.5 * expected


def test_one_loop_is_its_own_estimate_and_later_loops_weigh_by_their_steps():
    estimate = GradientNoiseScale(batch_size=8, pieces=2, decay=0.5)
    # b = 4, B = 8: |G_b|^2 = 3, |G_B|^2 = 2 per step -> |G|^2 = 1, tr(Sigma) = 8.
    first = estimate.update(6.0, 4.0, steps=2)  # bias-corrected: no pull towards 0
    assert first == pytest.approx(
        {"noise_scale": 8.0, "gradient_squared": 1.0, "gradient_variance": 8.0}
    )
    # Then |G_b|^2 = 5, |G_B|^2 = 3: |G|^2 = 1, tr(Sigma) = 16, for 1 step.
    second = estimate.update(5.0, 3.0, steps=1)
    # Weights: the first loop (1 - 0.25) x 0.5, the second 0.5, normalised.
    old, new = 0.75 * 0.5, 0.5
    trace = (old * 8 + new * 16) / (old + new)
    assert second["gradient_variance"] == pytest.approx(trace)
    assert second["noise_scale"] == pytest.approx(trace / 1.0)
    # A loop whose steps were all skipped changes nothing.
    assert estimate.update(0.0, 0.0, steps=0) == second


def test_nothing_is_measured_from_one_piece_or_before_a_step():
    assert GradientNoiseScale(8, pieces=1).update(3.0, 3.0, steps=1) == {}
    assert GradientNoiseScale(8, pieces=2).update(0.0, 0.0, steps=0) == {}


def test_a_non_positive_gradient_estimate_reports_no_noise_scale():
    # |G_b|^2 much larger than |G_B|^2 x B / b: the |G|^2 estimate is negative.
    figures = GradientNoiseScale(8, pieces=2).update(10.0, 1.0, steps=1)
    assert figures["gradient_squared"] < 0 and figures["noise_scale"] is None
    assert noise_scale.describe(figures) == "  B_noise ?"
    assert noise_scale.describe({"noise_scale": 1234.4}) == "  B_noise 1234"
    assert noise_scale.describe({}) == ""
