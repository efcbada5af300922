"""Independent float64 NumPy statements of the paper's Algorithms 1 and 2,
written from the paper, not from the package, for the tests to compare with."""

import numpy as np


def _ratio(x, u, coefficient=1.0, phi_bounds=None, ratio_bounds=None):
    x_norm, u_norm = np.linalg.norm(x), np.linalg.norm(u)
    if x_norm == 0 or u_norm == 0:
        ratio = 1.0
    else:
        phi = x_norm
        if phi_bounds is not None:
            low, high = phi_bounds
            phi = phi if low is None else max(phi, low)
            phi = phi if high is None else min(phi, high)
        ratio = coefficient * phi / u_norm
    if ratio_bounds is not None:
        low, high = ratio_bounds
        ratio = ratio if low is None else max(ratio, low)
        ratio = ratio if high is None else min(ratio, high)
    return ratio


def lamb(
    xs,
    grad_steps,
    lr=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-6,
    wd=0.0,
    decay=None,
    adapt=None,
    bias_correction=True,
    phi_bounds=None,
    ratio_bounds=None,
    variant="LAMB",
    decoupled_decay=False,
):
    """Runs LAMB over `grad_steps` (a list, per step, of gradients per
    variable). `decay`/`adapt`: per-variable booleans (default all True).
    `lr` is a float or one rate per step. `decoupled_decay` moves the decay
    out of the ratio, as Keras' Lamb does.
    Returns the final variables and the last step's ratios."""
    xs = [np.array(x, np.float64) for x in xs]
    decay = decay or [True] * len(xs)
    adapt = adapt or [True] * len(xs)
    ms = [np.zeros_like(x) for x in xs]
    vs = [np.zeros_like(x) for x in xs]
    ratios = []
    rates = np.broadcast_to(np.asarray(lr, np.float64), (len(grad_steps),))
    for t, grads in enumerate(grad_steps, start=1):
        ratios = []
        lr = rates[t - 1]
        for i, g in enumerate(grads):
            g = np.asarray(g, np.float64)
            if decoupled_decay:
                xs[i] = xs[i] - lr * wd * xs[i]
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            c1 = 1 - b1**t if bias_correction else 1.0
            c2 = 1 - b2**t if bias_correction else 1.0
            c1_next = 1 - b1 ** (t + 1) if bias_correction else 1.0
            c2_next = 1 - b2 ** (t + 1) if bias_correction else 1.0
            if variant == "LAMB":
                m_hat = ms[i] / c1
            else:
                m_hat = b1 * ms[i] / c1_next + (1 - b1) * g / c1
            if variant == "NN-LAMB":
                v_hat = b2 * vs[i] / c2_next + (1 - b2) * g * g / c2
            else:
                v_hat = vs[i] / c2
            u = m_hat / (np.sqrt(v_hat) + eps)
            if decay[i] and not decoupled_decay:
                u = u + wd * xs[i]
            ratio = _ratio(xs[i], u, 1.0, phi_bounds, ratio_bounds) if adapt[i] else 1.0
            xs[i] = xs[i] - lr * ratio * u
            ratios.append(ratio)
    return xs, ratios


def lars(
    xs,
    grad_steps,
    lr=1.0,
    momentum=0.9,
    wd=0.0,
    trust_coefficient=0.001,
    nesterov=False,
    decay=None,
    adapt=None,
    phi_bounds=None,
    ratio_bounds=None,
):
    xs = [np.array(x, np.float64) for x in xs]
    decay = decay or [True] * len(xs)
    adapt = adapt or [True] * len(xs)
    ms = [np.zeros_like(x) for x in xs]
    ratios = []
    for grads in grad_steps:
        ratios = []
        for i, g in enumerate(grads):
            d = np.asarray(g, np.float64) + (wd * xs[i] if decay[i] else 0.0)
            ms[i] = momentum * ms[i] + (1 - momentum) * d
            u = momentum * ms[i] + (1 - momentum) * d if nesterov else ms[i]
            ratio = (
                _ratio(xs[i], u, trust_coefficient, phi_bounds, ratio_bounds) if adapt[i] else 1.0
            )
            xs[i] = xs[i] - lr * ratio * u
            ratios.append(ratio)
    return xs, ratios


def adam(xs, grad_steps, lr=1e-3, b1=0.9, b2=0.999, eps=1e-6):
    """Plain Adam, the algorithm LAMB must be told apart from."""
    return lamb(xs, grad_steps, lr, b1, b2, eps, adapt=[False] * len(xs))[0]


def keras_style_lamb(xs, grad_steps, lr=1e-3, b1=0.9, b2=0.999, eps=1e-6, wd=0.0):
    """Weight decay decoupled, before the step, outside the ratio
    (`keras.optimizers.Lamb`), to show the tests tell it apart."""
    return lamb(xs, grad_steps, lr, b1, b2, eps, wd, decoupled_decay=True)[0]
