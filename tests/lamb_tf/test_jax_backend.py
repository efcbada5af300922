"""The same optimizer on Keras' JAX backend, in a subprocess (the backend is
fixed when Keras is first imported)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.lamb_tf import numpy_reference, problem
from tests.scripts import ROOT

pytest.importorskip("jax", reason="JAX is the optional [jax] extra")


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
    out["norms"].append([[np.linalg.norm(t.astype(np.float64)) for t in (x, u)], got.tolist()])

# The temporaries XLA gives one jitted step, in units of the variables' size.
shapes = [(1024, 256), (256,), (300, 77), (1000, 1000)]
variables = [keras.Variable(rng.standard_normal(s).astype(np.float32)) for s in shapes]
grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
size = 4 * sum(int(np.prod(s)) for s in shapes)
out["temporaries"] = {}
for name, optimizer in [
    ("lamb", lamb_tf.LAMB(1e-3, weight_decay=0.01)),
    ("lars", lamb_tf.LARS(1.0, weight_decay=1e-4)),
    ("keras_lamb", keras.optimizers.Lamb(1e-3)),
]:
    optimizer.build(variables)
    step = jax.jit(lambda p, s, g: optimizer.stateless_apply(s, g, p), donate_argnums=(0, 1))
    held = ([v.value for v in variables], [v.value for v in optimizer.variables])
    analysis = step.lower(*held, grads).compile().memory_analysis()
    out["temporaries"][name] = analysis.temp_size_in_bytes / size
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


def test_lamb_on_jax_matches_reference(jax_run):
    x0 = [np.asarray(x) for x in jax_run["lamb_x0"]]
    grad_steps = problem.gradient_steps(x0, steps=20)
    decay = [True, False, False, False, True]
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01, wd=0.1, decay=decay, adapt=decay)
    for got, w in zip(jax_run["lamb"], want):
        np.testing.assert_allclose(np.asarray(got), w, rtol=0, atol=problem.ATOL)


def test_lars_on_jax_matches_reference(jax_run):
    x0 = [np.asarray(x) for x in jax_run["lars_x0"]]
    grad_steps = problem.gradient_steps(x0, steps=20)
    want, _ = numpy_reference.lars(x0, grad_steps, lr=2.0, wd=0.01, nesterov=True)
    for got, w in zip(jax_run["lars"], want):
        np.testing.assert_allclose(np.asarray(got), w, rtol=0, atol=problem.ATOL)


def test_norms_on_jax_match_numpy(jax_run):
    for want, got in jax_run["norms"]:
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_steps_on_jax_write_no_variable_sized_temporary(jax_run):
    # Block sums only (1/16 of the variables per norm). Keras' Lamb keeps its
    # update directions, a whole model's worth: the measure sees temporaries.
    temporaries = jax_run["temporaries"]
    assert temporaries["lamb"] <= 0.13
    assert temporaries["lars"] <= 0.13
    assert temporaries["keras_lamb"] >= 0.9


def test_fit_on_jax_trains_and_reports_ratios(jax_run):
    losses = jax_run["losses"]
    assert losses[-1] < 0.8 * losses[0]
    assert len(jax_run["ratios"]) == 6 and all(r > 0 for r in jax_run["ratios"])
