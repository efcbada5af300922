"""LARS against an independent NumPy statement of the paper's Algorithm 1."""

import numpy as np
import pytest

import lamb_tf
from tests.lamb_tf import numpy_reference, problem

CASES = {
    "default": {},
    "nesterov": {"nesterov": True},
    "excluded": {"exclude_from_weight_decay": ["layer_norm", "bias"]},
    "adapt_all": {
        "exclude_from_weight_decay": ["layer_norm", "bias"],
        "exclude_from_layer_adaptation": [],
    },
    "bounds": {"phi_bounds": (1.0, 1.5), "trust_ratio_bounds": (None, 0.05)},
    "trust_coefficient": {"trust_coefficient": 0.02},
}


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_numpy_reference(case, jit_compile):
    kwargs = CASES[case]
    variables = problem.make_variables()
    assert [v.path for v in variables] == problem.PATHS
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=30)
    optimizer = lamb_tf.LARS(
        learning_rate=2.0, weight_decay=0.01, jit_compile=jit_compile, **kwargs
    )
    got = problem.run(optimizer, variables, grad_steps)
    decay, adapt = problem.masks(kwargs)
    want, ratios = numpy_reference.lars(
        x0,
        grad_steps,
        lr=2.0,
        wd=0.01,
        trust_coefficient=kwargs.get("trust_coefficient", 0.001),
        nesterov=kwargs.get("nesterov", False),
        decay=decay,
        adapt=adapt,
        phi_bounds=kwargs.get("phi_bounds"),
        ratio_bounds=kwargs.get("trust_ratio_bounds"),
    )
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)
    np.testing.assert_allclose(list(optimizer.trust_ratios.values()), ratios, rtol=1e-4)


def test_trust_ratio_changes_the_step():
    """Without layer adaptation LARS is momentum SGD: the test problem moves
    the weights far more than the reference tolerance between the two."""
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=30)
    want, _ = numpy_reference.lars(x0, grad_steps, lr=2.0)
    sgd, _ = numpy_reference.lars(x0, grad_steps, lr=2.0, adapt=[False] * 5)
    assert problem.max_error(sgd, want) > 100 * problem.ATOL
