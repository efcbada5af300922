"""The same optimizer on Keras' JAX backend, in a subprocess (the backend is
fixed when Keras is first imported)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import float32
from tests.conftest import requires
from tests.lamb_tf import numpy_reference, problem
from tests.scripts import ROOT

requires("jax", "jax")


SCRIPT = """
import json, keras, numpy as np, lamb_tf
from tests.lamb_tf import models, problem
assert keras.backend.backend() == "jax"
out = {}
for name, cls, kwargs in [
    ("lamb", lamb_tf.LAMB, dict(learning_rate=0.01, weight_decay=0.1,
                                exclude_from_weight_decay=["layer_norm", "bias"])),
    ("lars", lamb_tf.LARS, dict(learning_rate=2.0, weight_decay=0.01, nesterov=True)),
]:
    variables = problem.make_variables()
    out[name + "_x0"] = [v.tolist() for v in problem.initial_values(variables)]
    grad_steps = problem.gradient_steps(variables, steps=20)
    out[name] = [v.tolist() for v in problem.run(cls(**kwargs), variables, grad_steps)]

model = models.make_model()
model.compile(optimizer=lamb_tf.LAMB(**models.lamb_kwargs()), loss="mse")
x, y = models.make_data()
history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
out["losses"] = history.history["loss"]
out["ratios"] = list(model.optimizer.trust_ratios.values())

# The norms on JAX: small, blocked, and padded to whole blocks.
import jax
from lamb_tf.trust_ratio import l2_norms
rng = np.random.default_rng(0)
out["norms"] = []
for shape in [(2,), (31, 33), (96, 768), (1000, 1000), (5, 4, 2048)]:
    x, u = (rng.standard_normal(shape).astype(np.float32) * s for s in (1.0, 3.0))
    got = jax.jit(l2_norms)(x, u)
    want = [np.linalg.norm(t.astype(np.float64)) for t in (x, u)]
    out["norms"].append([want, got.tolist(), x.size])

# The temporaries XLA gives one jitted step on BERT-base's variables, in
# model sizes, as the table in docs/results.md on Keras' JAX backend measures them
# (tools/benchmark_optimizer.py: its shapes and optimizers, not imported here
# for the TensorFlow it loads). Compiled, not run: the variables and slots are
# declared without values, as XLA needs only their shapes.
hidden, intermediate, vocab = 768, 3072, 30522
shapes = [(vocab, hidden), (512, hidden), (2, hidden), (hidden,), (hidden,)]
for _ in range(12):
    shapes += [(hidden, hidden), (hidden,)] * 4 + [(hidden,), (hidden,)]
    shapes += [(hidden, intermediate), (intermediate,), (intermediate, hidden), (hidden,)]
    shapes += [(hidden,), (hidden,)]
shapes += [(hidden, hidden), (hidden,)]
shapes += [(hidden, hidden), (hidden,), (hidden,), (hidden,), (vocab,), (hidden, 2), (2,)]
size = sum(int(np.prod(s)) for s in shapes)
out["variables"], out["parameters"] = len(shapes), size
out["largest_variable"] = max(int(np.prod(s)) for s in shapes) / size
optimizers = {
    "lamb_tf.LAMB": lamb_tf.LAMB(1e-3, weight_decay=0.01, exclude_from_weight_decay=["bias"]),
    "lamb_tf.LARS": lamb_tf.LARS(1.0, weight_decay=1e-4),
    "keras.Lamb": keras.optimizers.Lamb(1e-3, epsilon=1e-6),
}
with keras.StatelessScope(initialize_variables=False):
    variables = [keras.Variable(keras.initializers.Zeros(), shape=s) for s in shapes]
    for optimizer in optimizers.values():
        optimizer.build(variables)
abstract = lambda values: [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in values]
out["temporaries"] = {}
for name, optimizer in optimizers.items():
    step = jax.jit(
        lambda p, s, g, optimizer=optimizer: optimizer.stateless_apply(s, g, p),
        donate_argnums=(0, 1),
    )
    held = abstract(variables), abstract(optimizer.variables), abstract(variables)
    analysis = step.lower(*held).compile().memory_analysis()
    out["temporaries"][name] = analysis.temp_size_in_bytes / (4 * size)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def jax_run():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


# Float32 steps against NumPy's float64 ones: rounding only, relative to how
# far the weights moved (tests/float32.py). The tests also show that what
# an optimizer done wrong moves differs by more than that bound.


def test_lamb_on_jax_matches_reference(jax_run):
    x0 = [np.asarray(x) for x in jax_run["lamb_x0"]]
    grad_steps = problem.gradient_steps(x0, steps=20)
    decay = [True, False, False, False, True]

    def lamb(**wrong):
        settings = dict(lr=0.01, wd=0.1, decay=decay, adapt=decay)
        return numpy_reference.lamb(x0, grad_steps, **{**settings, **wrong})[0]

    got = [np.asarray(v) for v in jax_run["lamb"]]
    float32.assert_same_weights(x0, lamb(), got)
    # Adam (no trust ratio), Keras' Lamb (decay outside it), no exclusions,
    # no bias correction.
    wrongs = [
        dict(adapt=[False] * 5),
        dict(decoupled_decay=True),
        dict(decay=None, adapt=None),
        dict(bias_correction=False),
    ]
    for wrong in wrongs:
        with pytest.raises(AssertionError, match="Mismatched elements"):
            float32.assert_same_weights(x0, lamb(), lamb(**wrong))


def test_lars_on_jax_matches_reference(jax_run):
    x0 = [np.asarray(x) for x in jax_run["lars_x0"]]
    grad_steps = problem.gradient_steps(x0, steps=20)

    def lars(**wrong):
        settings = dict(lr=2.0, wd=0.01, nesterov=True)
        return numpy_reference.lars(x0, grad_steps, **{**settings, **wrong})[0]

    got = [np.asarray(v) for v in jax_run["lars"]]
    float32.assert_same_weights(x0, lars(), got)
    # Momentum SGD (no trust ratio), plain momentum instead of Nesterov's.
    for wrong in (dict(adapt=[False] * 5), dict(nesterov=False)):
        with pytest.raises(AssertionError, match="Mismatched elements"):
            float32.assert_same_weights(x0, lars(), lars(**wrong))


def test_norms_on_jax_match_numpy(jax_run):
    # Float32 sums in another order than NumPy's float64 ones (tests/float32.py).
    for want, got, size in jax_run["norms"]:
        np.testing.assert_allclose(got, want, rtol=0, atol=float32.forward_atol(want, size))


def test_steps_on_jax_write_no_variable_sized_temporary(jax_run):
    # docs/results.md's figure for BERT-base: one variable's block sums at a time,
    # 1/8 of the largest variable (the word embedding, 0.21 of the model),
    # 0.03 model sizes. Every variable's block sums at once would be 1/8 of
    # the model, a kept update direction of the embedding 0.21. Keras' Lamb,
    # which keeps its update directions, shows that the measure sees
    # temporaries.
    temporaries = jax_run["temporaries"]
    assert jax_run["variables"] == 206 and round(jax_run["parameters"] / 1e6, 1) == 110.1
    assert round(jax_run["largest_variable"], 2) == 0.21
    assert temporaries["lamb_tf.LAMB"] <= 0.03
    assert temporaries["lamb_tf.LARS"] <= 0.03
    assert temporaries["keras.Lamb"] >= 0.9


def test_fit_on_jax_trains_and_reports_ratios(jax_run):
    losses = jax_run["losses"]
    assert losses[-1] < 0.8 * losses[0]
    assert len(jax_run["ratios"]) == 6 and all(r > 0 for r in jax_run["ratios"])
