import numpy as np
import pytest

from lamb_tf.trust_ratio import l2_norms, trust_ratio
from tests import float32


def _ratio(x_norm, u_norm, **kwargs):
    return float(trust_ratio(np.float32(x_norm), np.float32(u_norm), **kwargs))


def test_ratio_is_norm_quotient():
    assert _ratio(3.0, 2.0) == pytest.approx(1.5)
    assert _ratio(3.0, 2.0, coefficient=0.001) == pytest.approx(0.0015)


@pytest.mark.parametrize("x_norm, u_norm", [(0.0, 2.0), (3.0, 0.0), (0.0, 0.0)])
def test_zero_norm_gives_one(x_norm, u_norm):
    assert _ratio(x_norm, u_norm) == 1.0
    assert _ratio(x_norm, u_norm, coefficient=0.001) == 1.0


def test_phi_bounds_clamp_the_weight_norm():
    assert _ratio(10.0, 2.0, phi_bounds=(1.0, 4.0)) == pytest.approx(2.0)
    assert _ratio(0.5, 2.0, phi_bounds=(1.0, 4.0)) == pytest.approx(0.5)
    assert _ratio(10.0, 2.0, phi_bounds=(None, 4.0)) == pytest.approx(2.0)


def test_ratio_bounds_clamp_the_ratio():
    assert _ratio(100.0, 1.0, ratio_bounds=(0.01, 10.0)) == pytest.approx(10.0)
    assert _ratio(1e-4, 1.0, ratio_bounds=(0.01, 10.0)) == pytest.approx(0.01)
    assert _ratio(0.0, 1.0, ratio_bounds=(None, 0.5)) == pytest.approx(0.5)


@pytest.mark.parametrize("shape", [(2,), (31, 33), (1024, 32), (96, 768), (5, 4, 2048)])
@pytest.mark.parametrize("one_pass", [True, False])
def test_l2_norms_match_numpy(shape, one_pass):
    # Small, not divisible by the block, and blocked shapes: every path.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    u = rng.standard_normal(shape).astype(np.float32) * 3.0
    norms = np.asarray(l2_norms(x, u, one_pass))
    want = [np.linalg.norm(x.astype(np.float64)), np.linalg.norm(u.astype(np.float64))]
    # Float32 sums in another order than NumPy's float64 ones (tests/float32.py).
    np.testing.assert_allclose(norms, want, rtol=0, atol=float32.forward_atol(want, x.size))
