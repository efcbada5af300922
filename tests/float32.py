"""How close two float32 training runs can be when only the order of their
additions differs (replicas, micro-batches, workers, another CPU's vector
width), for tests that compare such runs.

A float32 addition rounds to within 2^-24 of its result, so a sum of n terms
is within n * 2^-24 of the sum of their magnitudes. The sums behind one
gradient element here run over at most about 10^3 terms (the tokens of a
batch, the units of a layer), so two orders of adding give gradients that
agree to about 10^3 * 2^-24 = 6e-5 of their magnitude. The optimizers
normalise their updates (Adam's m / sqrt(v), LAMB's and LARS's trust ratio):
each weight moves by a step of about the learning rate whatever the size of
its gradient, so a relative change of the gradient becomes the same relative
change of the step, even for a gradient near zero. Over a run, such changes
feed back through the weights into the next gradients.

The bound is therefore relative to how far the weights moved in the run:
`WEIGHTS_RTOL` of the largest distance any weight moved, 16 times the
gradient bound above, to cover that feedback over the few steps the tests
take. Runs that differ in anything but rounding (one step fewer, another
batch) differ by far more (the tests check that too).

The weights alone cannot show a gradient of the wrong size: LAMB's, LARS's
and Adam's steps do not change when every gradient is scaled (clipping hides
it too). Their moments do: Adam's first moment is linear in the gradients
and its second quadratic, so a doubled gradient doubles one and quadruples
the other. Optimizer slots are compared at `WEIGHTS_RTOL` of the largest
slot of their kind (a moment starts at zero, so that is how far it moved).
"""

import numpy as np

ROUNDING = 2.0**-24
TERMS = 1000  # the most terms of any one sum behind a gradient element
WEIGHTS_RTOL = 16 * TERMS * ROUNDING  # about 1e-3
# Loss and metric sums: one sum of up to TERMS terms per figure, x 4 for the
# logarithms and soft-maxes in front of it.
SUMS_RTOL = 4 * TERMS * ROUNDING  # about 2.4e-4


def weights_atol(initial, final):
    """The absolute tolerance for weights after a run from `initial` to
    `final` (lists of arrays): WEIGHTS_RTOL of the largest move."""
    moved = max(float(np.abs(np.asarray(b) - np.asarray(a)).max()) for a, b in zip(initial, final))
    return WEIGHTS_RTOL * moved


def forward_atol(reference, terms):
    """The absolute tolerance for one forward pass computed by two
    implementations of the same function (another framework's kernels,
    another order of the same float32 operations), relative to the largest
    output in `reference`. Unlike a run's steps, a forward pass has no
    optimizer between its sums to amplify a difference, and its
    normalisations (LayerNorm, soft-max) keep magnitudes near 1: the
    rounding errors of the `terms` additions behind an output add up like a
    random walk, to about sqrt(terms) * ROUNDING of its magnitude; x 4 for
    the tails."""
    return 4 * np.sqrt(terms) * ROUNDING * float(np.abs(reference).max())


def assert_same_weights(initial, expected, got):
    """`got` and `expected` (dicts of name -> array, or lists in the same
    order) within `weights_atol` of the run from `initial`."""
    names = list(expected) if isinstance(expected, dict) else range(len(expected))
    initial, expected, got = (
        [np.asarray(v[n], np.float64) for n in names] for v in (initial, expected, got)
    )
    atol = weights_atol(initial, expected)
    assert atol > 0, "the weights did not move: nothing to compare"
    for name, a, b in zip(names, expected, got):
        np.testing.assert_allclose(b, a, rtol=0, atol=atol, err_msg=name)


# Not optimizer state: the trust ratios LAMB records for the progress line.
# A key bias's gradient is rounding alone, and so is its ratio.
RECORDS = ("trust_ratio",)


def optimizer_slots(optimizer):
    """{name within the optimizer: value} of a Keras optimizer's variables
    (each optimizer object has its own name)."""
    return {v.path.split("/", 1)[1]: np.asarray(v) for v in optimizer.variables}


def assert_same_slots(expected, got):
    """Optimizer slots (dicts of name -> array, `RECORDS` left aside): each
    within `WEIGHTS_RTOL` of the largest value of its kind (the name's last
    word: `momentum`, `velocity`, ...) in the model; integer counters equal.
    Of its kind, not of its own: rounding is relative to the terms of a sum,
    and a gradient whose terms cancel (a key bias, which soft-max cannot
    see) is rounding alone."""
    expected, got = ({k: v for k, v in d.items() if k not in RECORDS} for d in (expected, got))
    assert expected.keys() == got.keys(), set(expected) ^ set(got)
    largest = {}
    for name, value in expected.items():
        kind = name.rsplit("_", 1)[-1]
        largest[kind] = max(largest.get(kind, 0.0), float(np.abs(value).max()))
    for name in expected:
        a, b = np.asarray(expected[name]), np.asarray(got[name])
        if not np.issubdtype(a.dtype, np.floating):
            np.testing.assert_array_equal(b, a, err_msg=name)
            continue
        atol = WEIGHTS_RTOL * largest[name.rsplit("_", 1)[-1]]
        np.testing.assert_allclose(b, a, rtol=0, atol=atol, err_msg=name)
