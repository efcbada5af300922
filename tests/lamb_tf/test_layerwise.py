"""Keras' optimizer contract: base features, configuration, saving, errors."""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import lamb_tf
from tests.lamb_tf import models, numpy_reference, problem

# ---------------------------------------------------------------- base features


def test_global_clipnorm_clips_before_lamb():
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    # Tiny clipped gradients make epsilon matter, so clipping shows.
    grad_steps = problem.gradient_steps(variables, steps=5, scale=1e-4)
    optimizer = lamb_tf.LAMB(learning_rate=0.01, global_clipnorm=1e-7)
    got = problem.run(optimizer, variables, grad_steps)
    clipped = []
    for grads in grad_steps:
        norm = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads))
        clipped.append([g * min(1.0, 1e-7 / norm) for g in grads])
    want, _ = numpy_reference.lamb(x0, clipped, lr=0.01)
    unclipped, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)
    assert problem.max_error(unclipped, want) > 100 * problem.ATOL


def test_clipnorm_clips_each_gradient():
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=5, scale=1e-4)
    optimizer = lamb_tf.LAMB(learning_rate=0.01, clipnorm=1e-7)
    got = problem.run(optimizer, variables, grad_steps)
    clipped = [
        [g * min(1.0, 1e-7 / max(np.linalg.norm(g), 1e-30)) for g in grads] for grads in grad_steps
    ]
    want, _ = numpy_reference.lamb(x0, clipped, lr=0.01)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)


def test_gradient_accumulation_averages_micro_batches():
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=6)
    optimizer = lamb_tf.LAMB(learning_rate=0.01, gradient_accumulation_steps=2)
    got = problem.run(optimizer, variables, grad_steps)
    averaged = [
        [(a + b) / 2 for a, b in zip(grad_steps[i], grad_steps[i + 1])] for i in range(0, 6, 2)
    ]
    want, _ = numpy_reference.lamb(x0, averaged, lr=0.01)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)


def test_loss_scale_factor_unscales_gradients():
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=4)
    optimizer = lamb_tf.LAMB(learning_rate=0.01, loss_scale_factor=128.0)
    got = problem.run(optimizer, variables, [[g * 128.0 for g in gs] for gs in grad_steps])
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=0.01)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)


def test_use_ema_tracks_the_average_of_the_weights():
    variables = problem.make_variables()
    grad_steps = problem.gradient_steps(variables, steps=3)
    optimizer = lamb_tf.LAMB(learning_rate=0.01, use_ema=True, ema_momentum=0.5)
    history = []
    for grads in grad_steps:
        optimizer.apply_gradients(zip(grads, variables))
        history.append(variables[0].numpy().copy())
    # Keras' EMA: the first step copies, then average = 0.5 average + 0.5 x.
    expected = history[0]
    for x in history[1:]:
        expected = 0.5 * expected + 0.5 * x
    optimizer.finalize_variable_values(variables)
    np.testing.assert_allclose(variables[0].numpy(), expected, rtol=1e-6)


def test_learning_rate_schedule_drives_the_step():
    variables = problem.make_variables()
    x0 = problem.initial_values(variables)
    grad_steps = problem.gradient_steps(variables, steps=4)
    schedule = lamb_tf.schedules.WarmupPolynomialDecay(0.02, total_steps=4, warmup_steps=2)
    optimizer = lamb_tf.LAMB(learning_rate=schedule)
    got = problem.run(optimizer, variables, grad_steps)
    # Rates at iterations 0..3: warmup 0, 0.01, then peak 0.02, then 0.01.
    want, _ = numpy_reference.lamb(x0, grad_steps, lr=[0.0, 0.01, 0.02, 0.01])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=problem.ATOL)


# ---------------------------------------------------------------- configuration

FULL_LAMB = dict(
    learning_rate=0.002,
    beta_1=0.8,
    beta_2=0.99,
    epsilon=1e-5,
    weight_decay=0.02,
    exclude_from_weight_decay=["layer_norm", "bias$"],
    exclude_from_layer_adaptation=["embeddings"],
    bias_correction=False,
    phi_bounds=(0.1, 10.0),
    trust_ratio_bounds=(None, 5.0),
    variant="NN-LAMB",
    jit_compile=False,
    global_clipnorm=1.0,
)
FULL_LARS = dict(
    learning_rate=3.0,
    momentum=0.8,
    weight_decay=1e-4,
    trust_coefficient=0.01,
    nesterov=True,
    exclude_from_weight_decay=["bn"],
    exclude_from_layer_adaptation=[],
    phi_bounds=(None, 3.0),
    clipnorm=2.0,
)


@pytest.mark.parametrize("cls, kwargs", [(lamb_tf.LAMB, FULL_LAMB), (lamb_tf.LARS, FULL_LARS)])
def test_config_round_trip_keeps_every_argument(cls, kwargs):
    optimizer = cls(**kwargs)
    config = json.loads(json.dumps(optimizer.get_config()))
    restored = cls.from_config(config)
    assert restored.get_config() == optimizer.get_config()
    for key, value in kwargs.items():
        want = list(value) if isinstance(value, tuple) else value
        if key == "learning_rate":  # held in a float32 variable
            want = pytest.approx(value, rel=1e-7)
        assert config[key] == want, key
    # Through Keras' own serialisation too.
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is cls and again.get_config() == optimizer.get_config()


def test_schedule_round_trips_through_the_optimizer_config():
    schedule = lamb_tf.schedules.MultiPhaseSchedule(
        [
            lamb_tf.schedules.WarmupPolynomialDecay(6e-3, 10, 3, power=0.5),
            lamb_tf.schedules.WarmupPolynomialDecay(4e-3, 5, 1, power=0.5),
        ]
    )
    optimizer = lamb_tf.LAMB(learning_rate=schedule)
    restored = lamb_tf.LAMB.from_config(json.loads(json.dumps(optimizer.get_config())))
    steps = np.arange(16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored._learning_rate(steps)),
        keras.ops.convert_to_numpy(schedule(steps)),
    )


def _train(model, epochs):
    x, y = models.make_data()
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)


def test_keras_file_reloads_optimizer_and_continues_identically(tmp_path):
    model = models.make_model()
    model.compile(optimizer=lamb_tf.LAMB(**models.lamb_kwargs()), loss="mse")
    _train(model, 2)
    path = tmp_path / "model.keras"
    model.save(path)
    _train(model, 2)

    reloaded = keras.saving.load_model(path)  # safe_mode stays on
    assert isinstance(reloaded.optimizer, lamb_tf.LAMB)
    assert reloaded.optimizer.get_config() == model.optimizer.get_config()
    _train(reloaded, 2)
    # The reloaded model and optimizer hold the saved values and run the
    # same steps (same ops, same order) as the original: identical weights.
    for got, want in zip(models.weights(reloaded), models.weights(model)):
        np.testing.assert_array_equal(got, want)


def test_tf_checkpoint_restores_slots(tmp_path):
    model = models.make_model()
    optimizer = lamb_tf.LAMB(**models.lamb_kwargs())
    model.compile(optimizer=optimizer, loss="mse")
    _train(model, 2)
    prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save(tmp_path / "ckpt")

    fresh = models.make_model(seed=1)
    fresh_optimizer = lamb_tf.LAMB(**models.lamb_kwargs())
    fresh_optimizer.build(fresh.trainable_variables)
    tf.train.Checkpoint(model=fresh, optimizer=fresh_optimizer).restore(
        prefix
    ).assert_existing_objects_matched()
    assert len(fresh_optimizer.variables) == len(optimizer.variables)
    for a, b in zip(fresh_optimizer.variables, optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(fresh_optimizer.iterations) == 4


# ---------------------------------------------------------------- errors

BAD = [
    (lamb_tf.LAMB, {"learning_rate": -0.1}, "learning_rate.*-0.1"),
    (lamb_tf.LAMB, {"beta_1": 1.0}, "beta_1.*1.0"),
    (lamb_tf.LAMB, {"beta_2": -0.5}, "beta_2.*-0.5"),
    (lamb_tf.LAMB, {"epsilon": -1e-6}, "epsilon.*-1e-06"),
    (lamb_tf.LAMB, {"weight_decay": -0.01}, "weight_decay.*-0.01"),
    (lamb_tf.LAMB, {"phi_bounds": (2.0, 1.0)}, r"phi_bounds.*inverted.*\(2.0, 1.0\)"),
    (lamb_tf.LAMB, {"trust_ratio_bounds": (10, 0.01)}, "trust_ratio_bounds.*inverted"),
    (lamb_tf.LAMB, {"phi_bounds": (-1.0, None)}, "phi_bounds.*-1.0"),
    (lamb_tf.LAMB, {"variant": "lamb2"}, "variant.*'lamb2'"),
    (lamb_tf.LAMB, {"exclude_from_weight_decay": ["("]}, r"exclude_from_weight_decay.*'\('"),
    (lamb_tf.LARS, {"momentum": 1.5}, "momentum.*1.5"),
    (lamb_tf.LARS, {"trust_coefficient": 0.0}, "trust_coefficient.*0.0"),
    (lamb_tf.LARS, {"learning_rate": -2.0}, "learning_rate.*-2.0"),
    (lamb_tf.LARS, {"exclude_from_layer_adaptation": ["*"]}, "exclude_from_layer_adaptation"),
    # Non-finite values would train to NaN weights without a word.
    (lamb_tf.LAMB, {"learning_rate": float("inf")}, "learning_rate.*finite.*inf"),
    (lamb_tf.LAMB, {"weight_decay": float("nan")}, "weight_decay.*finite.*nan"),
    (lamb_tf.LAMB, {"epsilon": 0.0}, r"epsilon.*> 0.*epsilon=0.0"),
    (lamb_tf.LAMB, {"epsilon": float("nan")}, "epsilon.*nan"),
    (lamb_tf.LAMB, {"beta_2": float("nan")}, "beta_2.*nan"),
    (lamb_tf.LAMB, {"trust_ratio_bounds": (0.01, float("nan"))}, "trust_ratio_bounds.*finite"),
    (lamb_tf.LARS, {"momentum": float("inf")}, "momentum.*inf"),
    (lamb_tf.LARS, {"trust_coefficient": float("nan")}, "trust_coefficient.*nan"),
]


@pytest.mark.parametrize("cls, kwargs, message", BAD)
def test_bad_arguments_name_argument_and_value(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_weight_decay_rate_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="weight_decay_rate"):
        optimizer = lamb_tf.LAMB(weight_decay_rate=0.01)
    assert optimizer.weight_decay == 0.01
    with pytest.raises(ValueError, match="not both"):
        lamb_tf.LAMB(weight_decay=0.02, weight_decay_rate=0.01)


def test_tfa_call_works_by_changing_the_import():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer = lamb_tf.LAMB(
            learning_rate=1e-3,
            weight_decay=0.01,
            exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
            exclude_from_layer_adaptation=None,
        )
    assert optimizer.epsilon == 1e-6


def test_diagnostics_before_build_say_what_to_do():
    with pytest.raises(ValueError, match="once the optimizer is built"):
        _ = lamb_tf.LAMB().trust_ratios
    with pytest.raises(ValueError, match="variable_rules.*once the optimizer is built"):
        _ = lamb_tf.LARS().variable_rules
