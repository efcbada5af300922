"""LAMB: Algorithm 2 of You et al., "Large Batch Optimization for Deep
Learning: Training BERT in 76 minutes" (arXiv:1904.00962, v5)."""

import keras
from keras import ops

from lamb_tf import validation
from lamb_tf.layerwise import LayerwiseOptimizer

VARIANTS = ("LAMB", "N-LAMB", "NN-LAMB")


@keras.saving.register_keras_serializable(package="lamb_tf")
class LAMB(LayerwiseOptimizer):
    """Layer-wise Adaptive Moments for Batch training, as in the paper.

    For every weight tensor x (one "layer" i of the paper):

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = b2 v_{t-1} + (1 - b2) g_t^2
        r_t = m_hat_t / (sqrt(v_hat_t) + eps),  m_hat = m_t / (1 - b1^t),  v_hat = v_t / (1 - b2^t)
        u_t = r_t + lambda x_t
        x_{t+1} = x_t - eta_t phi(||x_t||) / ||u_t|| u_t

    The ratio phi(||x||)/||u|| is 1 when either norm is 0, and for variables
    excluded from layer adaptation.

    Where it differs from other libraries, deliberately:
    - Weight decay lambda x is inside u_t, so inside the trust ratio (the
      paper, tfa, Model Garden, optax). `keras.optimizers.Lamb` applies it
      decoupled, before the step, outside the ratio; Keras' decoupled decay is
      never used here.
    - epsilon defaults to 1e-6 (the paper, BERT) and is added to sqrt(v_hat)
      after bias correction; Keras' Lamb uses 1e-7.
    - Exclusion lists are regular expressions searched in the variable's full
      path (`model/encoder/layer_norm/gamma`), kept by `get_config`.

    Args:
        learning_rate: eta; a float, a `keras.optimizers.schedules`
            schedule (see `lamb_tf.schedules`) or a callable.
        beta_1, beta_2: moment decay rates, in [0, 1).
        epsilon: added to sqrt(v_hat); > 0 (with 0, a variable whose
            gradients are all zero divides 0 by 0).
        weight_decay: lambda, >= 0; `weight_decay_rate` is accepted as a
            deprecated alias (tfa, Model Garden).
        exclude_from_weight_decay: regular expressions; matching variables
            get no weight decay, e.g. `["layer_norm", "LayerNorm", "bias"]`.
        exclude_from_layer_adaptation: regular expressions; matching variables
            take the plain Adam step (ratio 1). None means the same variables
            as `exclude_from_weight_decay` (tfa's rule); `[]` adapts all.
        bias_correction: divide the moments by (1 - b^t) (paper v5; v3 did
            not).
        phi_bounds: `(gamma_l, gamma_u)` of the paper's bounded
            phi(z) = min(max(z, gamma_l), gamma_u), or None (identity).
        trust_ratio_bounds: `(low, high)` clamp of the ratio itself, as
            DeepSpeed's (0.01, 10) or timm's trust_clip (None, 1); None = off.
        variant: "LAMB", or the paper's Nesterov variants "N-LAMB"
            (Nesterov first moment, NAdam form) and "NN-LAMB" (both moments).
        jit_compile: TensorFlow backend: XLA-compile the update of all
            variables, whatever the surrounding step does.
        **kwargs: Keras' optimizer arguments (`global_clipnorm`, `clipnorm`,
            `gradient_accumulation_steps`, `loss_scale_factor`, `use_ema`, ...).

    After a step, `optimizer.trust_ratios` maps each variable's path to its
    last trust ratio (`trust_ratio_tensor` gives them as one tensor).
    """

    slot_names = ("momentum", "velocity")

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        weight_decay=0.0,
        exclude_from_weight_decay=None,
        exclude_from_layer_adaptation=None,
        bias_correction=True,
        phi_bounds=None,
        trust_ratio_bounds=None,
        variant="LAMB",
        jit_compile=True,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
            exclude_from_layer_adaptation=exclude_from_layer_adaptation,
            phi_bounds=phi_bounds,
            trust_ratio_bounds=trust_ratio_bounds,
            jit_compile=jit_compile,
            name=name,
            **kwargs,
        )
        self.beta_1 = validation.unit_interval("beta_1", beta_1)
        self.beta_2 = validation.unit_interval("beta_2", beta_2)
        self.epsilon = validation.positive("epsilon", epsilon)
        self.bias_correction = bool(bias_correction)
        if variant not in VARIANTS:
            raise ValueError(f"`variant` must be one of {VARIANTS}. Received: variant={variant!r}")
        self.variant = variant

    def _moments(self, x, g, slots, decay):
        m, v = slots
        b1, b2 = self.beta_1, self.beta_2
        return b1 * m + (1.0 - b1) * g, b2 * v + (1.0 - b2) * ops.square(g)

    def _direction(self, x, g, slots, step, decay):
        m, v = slots
        m_hat = self._debiased(m, g, self.beta_1, step, self.variant != "LAMB")
        v_hat = self._debiased(v, ops.square(g), self.beta_2, step, self.variant == "NN-LAMB")
        u = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if decay:
            u = u + self.weight_decay * x
        return u

    def _debiased(self, moment, sample, beta, step, nesterov):
        """moment/(1 - b^t); with Nesterov (Dozat's NAdam form) the look-ahead
        b*moment/(1 - b^(t+1)) + (1 - b)*sample/(1 - b^t). Scalars are
        inverted once: a divide per element would cost more than its memory."""
        if not self.bias_correction:
            return beta * moment + (1.0 - beta) * sample if nesterov else moment
        inverse = 1.0 / (1.0 - ops.power(beta, step))
        if not nesterov:
            return moment * inverse
        next_inverse = 1.0 / (1.0 - ops.power(beta, step + 1.0))
        return (beta * next_inverse) * moment + ((1.0 - beta) * inverse) * sample

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "bias_correction": self.bias_correction,
                "variant": self.variant,
            }
        )
        return config
