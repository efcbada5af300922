"""LARS: Algorithm 1 of You et al. (arXiv:1904.00962), the baseline LAMB beats
on BERT, with the trust coefficient of the original LARS (arXiv:1708.03888)."""

import keras

from lamb_tf import validation
from lamb_tf.layerwise import LayerwiseOptimizer


@keras.saving.register_keras_serializable(package="lamb_tf")
class LARS(LayerwiseOptimizer):
    """Layer-wise Adaptive Rate Scaling with momentum, as in the paper.

    For every weight tensor x:

        m_t = b m_{t-1} + (1 - b) (g_t + lambda x_t)
        u_t = m_t          (Nesterov: u_t = b m_t + (1 - b)(g_t + lambda x_t))
        x_{t+1} = x_t - eta_t * trust_coefficient * phi(||x_t||) / ||u_t|| * u_t

    The ratio is 1 (without the trust coefficient) when either norm is 0 and
    for variables excluded from layer adaptation, as in TensorFlow's TPU LARS
    and MLPerf's: those variables take plain momentum steps of size eta.

    Note the paper's momentum is an average (the (1 - b) factor), so at equal
    eta the step is (1 - b) times that of undamped momentum SGD.

    Args:
        learning_rate: eta; a float, schedule or callable.
        momentum: b, in [0, 1).
        weight_decay: lambda >= 0, added to the gradient inside the ratio.
        trust_coefficient: scales the ratio (0.001 in the original LARS).
        nesterov: use Nesterov momentum.
        exclude_from_weight_decay, exclude_from_layer_adaptation, phi_bounds,
        trust_ratio_bounds, jit_compile, **kwargs: as for `lamb_tf.LAMB`.
    """

    slot_names = ("momentum",)
    _norms_in_one_pass = False

    def __init__(
        self,
        learning_rate=1.0,
        momentum=0.9,
        weight_decay=0.0,
        trust_coefficient=0.001,
        nesterov=False,
        exclude_from_weight_decay=None,
        exclude_from_layer_adaptation=None,
        phi_bounds=None,
        trust_ratio_bounds=None,
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
        self.momentum = validation.unit_interval("momentum", momentum)
        self.trust_coefficient = validation.positive("trust_coefficient", trust_coefficient)
        self.nesterov = bool(nesterov)

    def _moments(self, x, g, slots, decay):
        (m,) = slots
        return (self.momentum * m + (1.0 - self.momentum) * self._decayed(x, g, decay),)

    def _direction(self, x, g, slots, step, decay):
        (m,) = slots
        if not self.nesterov:
            return m
        return self.momentum * m + (1.0 - self.momentum) * self._decayed(x, g, decay)

    def _decayed(self, x, g, decay):
        return g + self.weight_decay * x if decay else g

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "trust_coefficient": self.trust_coefficient,
                "nesterov": self.nesterov,
            }
        )
        return config
