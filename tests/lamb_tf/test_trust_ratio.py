import numpy as np
import pytest

from lamb_tf.trust_ratio import l2_norm, trust_ratio


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


def test_l2_norm():
    assert float(l2_norm(np.array([[3.0, 4.0]], np.float32))) == pytest.approx(5.0)
