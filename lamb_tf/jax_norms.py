"""(||x||, ||u||) on Keras' JAX backend: one variadic reduction.

XLA:CPU (JAX 0.10) gives a plain sum to its YNNPACK reduction, which fuses
nothing that produced the tensor: x*x and u*u are written out in full and read
back, and the TensorFlow form (blocks of x and u stacked into one reduction)
writes the stacked squares, twice the variable. A reduction of two operands
at once stays with XLA's own loop emitter, which computes u from the moments
as it reads them: one pass over x, m and v for both norms, nothing the size
of the variable written.

The first level sums blocks of 16 rows of 8 lanes: LLVM unrolls a loop that
short and vectorises the square root and division that make u; with 32 rows
or more they run one element at a time, and the step slows markedly. Its block
sums (1/16 of the tensor per norm) go to a second, small reduction. A
tensor that is not whole blocks is padded with zeros inside the same pass.

XLA:CPU schedules the first pass of every variable before any second one, so
all block sums would be alive at once (1/8 of the model) and allocated anew
at every step. Each variable's reductions therefore start from a zero
computed from the previous variable's trust ratio: one variable's block sums at a
time, and the step is faster for it (fewer pages to fault in).
"""

import jax
import jax.numpy as jnp

_ROWS, _LANES = 16, 8
_BLOCK = _ROWS * _LANES


def l2_norms(x, u, after=None):
    """(||x||, ||u||) of two tensors of one shape, as a vector of 2; with
    `after` (a value computed from another variable's norms), computed once
    that is."""
    x, u = jnp.ravel(x), jnp.ravel(u)
    zero = jnp.zeros((), x.dtype) if after is None else _zero_after(after, x.dtype)
    if x.size < 8 * _BLOCK:  # small: one reduction, no blocks
        return jnp.sqrt(jnp.stack(_sums_of_squares(x, u, (0,), zero)))
    pad = -x.size % _BLOCK
    x, u = (jnp.reshape(jnp.pad(t, (0, pad)), (-1, _ROWS, _LANES)) for t in (x, u))
    return jnp.sqrt(jnp.stack(_sums(_sums_of_squares(x, u, (1,), zero), (0, 1), zero)))


def _zero_after(values, dtype):
    """+0.0 computed from `values`, whatever they hold (inf and NaN too), in a
    form XLA cannot fold away: a data dependence that orders the passes."""
    low = jnp.minimum(jnp.abs(jnp.sum(values)), 0.0)  # 0, or NaN
    return jnp.where(jnp.isnan(low), 0.0, low).astype(dtype)


def _sums_of_squares(x, u, axes, zero):
    return _sums((x * x, u * u), axes, zero)


def _sums(pair, axes, zero):
    return jax.lax.reduce(pair, (zero, zero), _add_pairs, axes)


def _add_pairs(a, b):
    return a[0] + b[0], a[1] + b[1]
