"""The machinery LAMB and LARS share: per-layer direction, trust ratio, step.

A subclass defines the update direction u_t of one weight tensor from its
gradient and slots (`_update_direction`); this class turns it into

    x_{t+1} = x_t - eta_t * ratio_t * u_t,   ratio_t = trust_ratio(||x_t||, ||u_t||)

for every variable, decides per variable whether weight decay and layer
adaptation apply (regular expressions over variable paths), records the
ratios, and runs the whole update of all variables as one computation: one
XLA-compiled function on the TensorFlow backend, inside the surrounding jitted
step on JAX.
"""

import warnings

import keras
from keras import ops

from lamb_tf import validation
from lamb_tf.exclusions import PathPatterns, variable_path
from lamb_tf.trust_ratio import l2_norm, trust_ratio

_HALF_DTYPES = ("float16", "bfloat16")


class LayerwiseOptimizer(keras.optimizers.Optimizer):
    """Base class; see `lamb_tf.LAMB` and `lamb_tf.LARS`."""

    slot_names = ()
    trust_coefficient_value = 1.0

    def __init__(
        self,
        learning_rate,
        weight_decay=0.0,
        exclude_from_weight_decay=None,
        exclude_from_layer_adaptation=None,
        phi_bounds=None,
        trust_ratio_bounds=None,
        jit_compile=True,
        name=None,
        **kwargs,
    ):
        weight_decay = _deprecated_weight_decay_rate(weight_decay, kwargs)
        weight_decay = validation.non_negative("weight_decay", weight_decay or 0.0)
        super().__init__(
            learning_rate=validation.learning_rate(learning_rate),
            weight_decay=weight_decay,
            name=name,
            **kwargs,
        )
        self._decay_patterns = PathPatterns(exclude_from_weight_decay, "exclude_from_weight_decay")
        # None means "the weight-decay list", as in tfa and Model Garden.
        self._adaptation_patterns = (
            None
            if exclude_from_layer_adaptation is None
            else PathPatterns(exclude_from_layer_adaptation, "exclude_from_layer_adaptation")
        )
        self.phi_bounds = validation.bounds("phi_bounds", phi_bounds)
        self.trust_ratio_bounds = validation.bounds("trust_ratio_bounds", trust_ratio_bounds)
        self.jit_compile = bool(jit_compile)
        self._compiled_apply = None

    # ----------------------------------------------------------------- build

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slots = self.add_optimizer_variables(var_list, list(self.slot_names))
        self._decays = [self._decays_weight(v) for v in var_list]
        self._adapts = [self._adapts_layer(v) for v in var_list]
        self._trust_ratio = self.add_variable(
            shape=(len(var_list),),
            initializer="ones",
            dtype="float32",
            name="trust_ratio",
        )

    def _excluded_from_weight_decay(self, variable):
        # Also honours Keras' `optimizer.exclude_from_weight_decay(...)` method.
        return self._decay_patterns.matches(variable) or not self._use_weight_decay(variable)

    def _decays_weight(self, variable):
        return self.weight_decay > 0 and not self._excluded_from_weight_decay(variable)

    def _adapts_layer(self, variable):
        if self._adaptation_patterns is None:
            return not self._excluded_from_weight_decay(variable)
        return not self._adaptation_patterns.matches(variable)

    def _apply_weight_decay(self, variables):
        # Weight decay enters the update direction itself (inside the trust
        # ratio, as in the paper), never Keras' decoupled decay.
        return

    # ------------------------------------------------------------ the math

    def _update_direction(self, x, g, slots, step, decay):
        """Returns (u, new_slots) for one variable; all in the compute dtype."""
        raise NotImplementedError

    def _compute_updates(self, indices, xs, grads, slots, learning_rate, step):
        """Pure function of values: the new variables, slots and trust ratios.

        `indices` are the variables' positions in the optimizer's list, a
        Python tuple, so each variable's rules are fixed when this is traced.
        """
        new_xs, new_slots, ratios = [], [], []
        for i, x, g, s in zip(indices, xs, grads, slots):
            dtype = keras.backend.standardize_dtype(x.dtype)
            # Half-precision moments would round b2 = 0.999 to 1: compute in float32.
            compute = "float32" if dtype in _HALF_DTYPES else dtype
            x_c = ops.cast(x, compute)
            u, s_new = self._update_direction(
                x_c,
                ops.cast(g, compute),
                [ops.cast(v, compute) for v in s],
                ops.cast(step, compute),
                self._decays[i],
            )
            if self._adapts[i]:
                ratio = trust_ratio(
                    l2_norm(x_c),
                    l2_norm(u),
                    self.trust_coefficient_value,
                    self.phi_bounds,
                    self.trust_ratio_bounds,
                )
            else:
                ratio = ops.ones((), compute)
            new_xs.append(ops.cast(x_c - ops.cast(learning_rate, compute) * ratio * u, dtype))
            new_slots.append([ops.cast(v, dtype) for v in s_new])
            ratios.append(ops.cast(ratio, "float32"))
        return new_xs, new_slots, ops.stack(ratios)

    def _updated_ratios(self, old, indices, ratios):
        if list(indices) == list(range(len(self._trainable_variables))):
            return ratios
        return ops.scatter_update(old, [[i] for i in indices], ratios)

    # --------------------------------------------------------- the dispatch

    def update_step(self, gradient, variable, learning_rate):
        self._update_variables([gradient], [variable], learning_rate)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() == "tensorflow":
            from lamb_tf import tf_dispatch

            tf_dispatch.update_on_each_replica(self, grads, trainable_variables, learning_rate)
        else:
            self._update_variables(grads, trainable_variables, learning_rate)

    def _update_variables(self, grads, variables, learning_rate):
        """Backend-neutral path (JAX, where the whole train step is jitted)."""
        indices = tuple(self._get_variable_index(v) for v in variables)
        slots = [[s[i] for s in self._slots] for i in indices]
        new_xs, new_slots, ratios = self._compute_updates(
            indices,
            [v.value for v in variables],
            list(grads),
            [[s.value for s in ss] for ss in slots],
            learning_rate,
            self.iterations + 1,
        )
        for v, value in zip(variables, new_xs):
            self.assign(v, value)
        for ss, values in zip(slots, new_slots):
            for s, value in zip(ss, values):
                self.assign(s, value)
        self.assign(
            self._trust_ratio,
            self._updated_ratios(self._trust_ratio.value, indices, ratios),
        )

    # ---------------------------------------------------------- diagnostics

    @property
    def trust_ratio_tensor(self):
        """The last step's trust ratios, one per variable (optimizer order).

        A variable excluded from layer adaptation reports 1. Reading it costs
        nothing; the step writes these few floats either way.
        """
        self._check_built("trust_ratio_tensor")
        return self._trust_ratio.value

    @property
    def trust_ratios(self):
        """The last step's trust ratios as `{variable path: float}`."""
        self._check_built("trust_ratios")
        values = ops.convert_to_numpy(ops.convert_to_tensor(self._trust_ratio.value))
        return {variable_path(v): float(r) for v, r in zip(self._trainable_variables, values)}

    def _check_built(self, what):
        if not self.built:
            raise ValueError(
                f"`{what}` is available once the optimizer is built: apply a "
                "step or call `optimizer.build(model.trainable_variables)`."
            )

    # ---------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "exclude_from_weight_decay": list(self._decay_patterns.patterns),
                "exclude_from_layer_adaptation": (
                    None
                    if self._adaptation_patterns is None
                    else list(self._adaptation_patterns.patterns)
                ),
                "phi_bounds": _listed(self.phi_bounds),
                "trust_ratio_bounds": _listed(self.trust_ratio_bounds),
                "jit_compile": self.jit_compile,
            }
        )
        return config


def _listed(bounds):
    return None if bounds is None else list(bounds)


def _deprecated_weight_decay_rate(weight_decay, kwargs):
    if "weight_decay_rate" not in kwargs:
        return weight_decay
    rate = kwargs.pop("weight_decay_rate")
    if weight_decay not in (None, 0.0) and weight_decay != rate:
        raise ValueError(
            "Pass `weight_decay` or its deprecated alias `weight_decay_rate`, "
            f"not both. Received: weight_decay={weight_decay}, "
            f"weight_decay_rate={rate}"
        )
    warnings.warn(
        "`weight_decay_rate` is deprecated; use `weight_decay` (same meaning).",
        DeprecationWarning,
        stacklevel=4,
    )
    return rate
