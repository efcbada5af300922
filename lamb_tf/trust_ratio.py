"""The layer-wise trust ratio shared by LAMB and LARS.

    ratio = coefficient * phi(||x||) / ||u||,   phi(z) = min(max(z, gamma_l), gamma_u)

with the rule every implementation agrees on: the ratio is 1 when ||x|| or
||u|| is zero (a zero-initialised bias takes a plain, unscaled step).
"""

import math

import keras
from keras import ops

_BLOCK = 32


def l2_norms(x, u, one_pass=True, after=None):
    """(||x||, ||u||) of two tensors of one shape, as a vector of 2.

    A large tensor is summed in two levels: squares summed over blocks of 32
    elements, then the block sums added by a product with ones. XLA:CPU fuses
    the first level with the squares (and whatever produced the tensor) into
    one streaming pass; a single full reduction makes it write x*x out in full
    first and read it back. With `one_pass`, the blocks of x and u alternate
    in one reduction, so a u computed from x reads x once for both norms;
    without it, two reductions, faster when u is already in memory.

    That form is XLA:CPU's under TensorFlow. On JAX the norms take their own
    form (`lamb_tf.jax_norms`), whatever `one_pass` says, and wait for the
    values `after` (TensorFlow orders the variables by their reads and writes).
    """
    if keras.backend.backend() == "jax":
        from lamb_tf import jax_norms  # imports JAX

        return jax_norms.l2_norms(x, u, after)
    size = math.prod(x.shape) if all(d is not None for d in x.shape) else 0
    if size < _BLOCK * _BLOCK or size % _BLOCK:
        return ops.sqrt(ops.stack([ops.sum(ops.square(x)), ops.sum(ops.square(u))]))
    if one_pass:
        squares = ops.stack([ops.reshape(ops.square(t), (-1, _BLOCK)) for t in (x, u)], 1)
        blocks = ops.reshape(_block_sums(squares), (-1, 2))
    else:
        blocks = ops.stack([_block_sums(ops.square(t)) for t in (x, u)], 1)
    return ops.sqrt(ops.matmul(ops.ones((size // _BLOCK,), blocks.dtype), blocks))


def _block_sums(squares):
    # A 1-D result: XLA:CPU splits this reduction over the cores, not a 2-D one.
    return ops.sum(ops.reshape(squares, (-1, _BLOCK)), axis=1)


def trust_ratio(param_norm, update_norm, coefficient=1.0, phi_bounds=None, ratio_bounds=None):
    """Trust ratio from the two norms (scalars of the same float dtype).

    Args:
        param_norm: ||x||, the norm of the weights.
        update_norm: ||u||, the norm of the update direction.
        coefficient: LARS' trust coefficient; 1 for LAMB.
        phi_bounds: `(gamma_l, gamma_u)` of the paper's phi, or None for the
            identity; either end may be None.
        ratio_bounds: `(low, high)` clamp on the final ratio (DeepSpeed uses
            (0.01, 10)), or None; either end may be None.
    """
    phi = _clip(param_norm, phi_bounds)
    both_positive = ops.logical_and(ops.greater(param_norm, 0.0), ops.greater(update_norm, 0.0))
    # Divide by a safe denominator so the unused branch never makes inf/NaN.
    safe_norm = ops.where(both_positive, update_norm, ops.ones_like(update_norm))
    ratio = ops.where(both_positive, coefficient * phi / safe_norm, ops.ones_like(update_norm))
    return _clip(ratio, ratio_bounds)


def _clip(value, bounds):
    if bounds is None:
        return value
    low, high = bounds
    if low is not None:
        value = ops.maximum(value, low)
    if high is not None:
        value = ops.minimum(value, high)
    return value
