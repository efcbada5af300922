"""The gradient noise scale of McCandlish et al. 2018 ("An Empirical Model of
Large-Batch Training"), measured during training at almost no cost.

B_simple = tr(Sigma) / |G|^2, with Sigma the per-sequence gradient
covariance and G the true gradient, predicts the critical batch: training
at batch B takes about S_min (1 + B_simple / B) steps, so batches well
below B_simple scale perfectly and batches well above it waste data.

Each update already computes gradients of smaller batches: the m pieces of
b = B / m sequences it is made of (k accumulated micro-batches on each of
n replicas, m = k n). The engines return, per update, the squared norm of
the B-sequence gradient and the mean squared norm of the b-sequence
estimates of the gradient (each piece's gradient times m, as the loss is
normalised by the whole batch). Their expectations are
|G|^2 + tr(Sigma) / B and |G|^2 + tr(Sigma) / b, so (Appendix A.1)

    |G|^2    ~ (B |G_B|^2 - b |G_b|^2) / (B - b)
    tr(Sigma) ~ (|G_b|^2 - |G_B|^2) / (1 / b - 1 / B)

are unbiased. Both are smoothed with an exponential moving average over
steps before their ratio is taken (the ratio of noisy estimates is biased).
With one piece per update (one replica, no accumulation) nothing is
measured.
"""

import math

DECAY = 0.99  # per step: the last ~100 updates carry most weight


def pieces(plan, num_replicas):
    """How many gradients of equal parts make one update of `plan`."""
    return plan.accumulation_steps * num_replicas


class GradientNoiseScale:
    """Host-side estimate, updated once per host loop.

    Args:
        batch_size: sequences per update (B).
        pieces: gradients of B / pieces sequences per update (m).
        decay: of the moving averages, per step.
    """

    def __init__(self, batch_size, pieces, decay=DECAY):
        self.big = float(batch_size)
        self.small = self.big / pieces
        self.available = pieces > 1
        self.decay = decay
        self._gradient, self._trace, self._weight = 0.0, 0.0, 0.0

    def update(self, small_squared_sum, big_squared_sum, steps):
        """Adds a host loop: the sums over its `steps` applied updates of
        |G_b|^2 and |G_B|^2. Returns the figures to report (empty when not
        available)."""
        if not self.available:
            return {}
        if steps > 0:
            small, big = float(small_squared_sum) / steps, float(big_squared_sum) / steps
            gradient = (self.big * big - self.small * small) / (self.big - self.small)
            trace = (small - big) / (1.0 / self.small - 1.0 / self.big)
            # A loop of n steps moves the averages as n single steps would.
            keep = self.decay**steps
            self._gradient = keep * self._gradient + (1 - keep) * gradient
            self._trace = keep * self._trace + (1 - keep) * trace
            self._weight = keep * self._weight + (1 - keep)
        return self.figures()

    def figures(self):
        if not self.available or self._weight == 0:
            return {}
        gradient = self._gradient / self._weight  # bias-corrected, as Adam's moments
        trace = self._trace / self._weight
        noise_scale = trace / gradient if gradient > 0 and trace > 0 else None
        return {
            "noise_scale": noise_scale,
            "gradient_squared": gradient,
            "gradient_variance": trace,
        }


def describe(figures):
    """The progress line's part: "B_noise 123" (or "B_noise ?" while the
    estimate of |G|^2 is not positive)."""
    if "noise_scale" not in figures:
        return ""
    value = figures["noise_scale"]
    return "  B_noise " + ("?" if value is None or not math.isfinite(value) else f"{value:.0f}")
