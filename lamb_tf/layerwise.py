"""The machinery LAMB and LARS share: per-layer direction, trust ratio, step.

A subclass defines the update direction u_t of one weight tensor from its
gradient and slots (`_moments`, `_direction`); this class turns it into

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

from lamb_tf import access, validation
from lamb_tf.exclusions import PathPatterns, variable_path
from lamb_tf.trust_ratio import l2_norms, trust_ratio

_HALF_DTYPES = ("float16", "bfloat16")


class LayerwiseOptimizer(keras.optimizers.Optimizer):
    """Base class; see `lamb_tf.LAMB` and `lamb_tf.LARS`."""

    slot_names = ()
    trust_coefficient = 1.0  # LARS sets its own; LAMB's ratio is phi(||x||)/||u||
    # LAMB computes u from x and its slots as it goes: one pass takes both
    # norms. LARS's u is its momentum, already in memory: two passes are faster.
    _norms_in_one_pass = True

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
        self._compiled_apply = None  # TensorFlow: the XLA function, traced once

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

    def _moments(self, x, g, slots, decay):
        """Returns the new slots of one variable; all in the compute dtype."""
        raise NotImplementedError

    def _direction(self, x, g, slots, step, decay):
        """Returns the update direction u_t from the new slots.

        Called twice per step on the same values (once for the norms, once
        for the update, see `_update_variable`), so it must be pure: no
        state, no randomness, nothing written."""
        raise NotImplementedError

    def _update_variable(self, index, x, g, slots, learning_rate, step, barrier, after=None):
        """Pure: the new value, new slots and trust ratio of one variable.

        `index` is the variable's position in the optimizer's list, a Python
        int, so its rules (decay, adaptation) are fixed when this is traced.
        Two passes over the variable: the first writes the slots and takes
        ||x|| and ||u||, the second recomputes u from the slots just written
        and writes x. `barrier` hides the first pass's u from the second, so
        the compiler recomputes it (a few reads) instead of keeping u, a
        temporary the size of the variable, alive between the passes.
        `after`: the trust ratio of the variable updated before, which the
        norms wait for on JAX (see `lamb_tf.jax_norms`).
        """
        dtype = keras.backend.standardize_dtype(x.dtype)
        # Half-precision moments would round b2 = 0.999 to 1: compute in float32.
        compute = "float32" if dtype in _HALF_DTYPES else dtype
        decay = self._decays[index]
        x, g = ops.cast(x, compute), ops.cast(g, compute)
        step = ops.cast(step, compute)
        slots = self._moments(x, g, [ops.cast(s, compute) for s in slots], decay)
        ratio = ops.ones((), compute)
        if self._adapts[index]:
            u = self._direction(x, g, slots, step, decay)
            norms = l2_norms(x, u, self._norms_in_one_pass, after)
            x, g, slots, norms = barrier((x, g, list(slots), norms))
            ratio = trust_ratio(
                norms[0], norms[1], self.trust_coefficient, self.phi_bounds, self.trust_ratio_bounds
            )
        u = self._direction(x, g, slots, step, decay)
        new_x = x - ops.cast(learning_rate, compute) * ratio * u
        return (
            ops.cast(new_x, dtype),
            [ops.cast(s, dtype) for s in slots],
            ops.cast(ratio, "float32"),
        )

    def _apply_layerwise(self, indices, grads, refs, access, learning_rate, step):
        """Reads, updates and writes each variable in turn, then the ratios.

        `refs[k]` holds the references to variable `indices[k]` and its slots
        (Keras variables, or resource handles on TensorFlow), `refs[-1]` the
        trust-ratio vector's; `access` reads and writes them and provides the
        backend's optimization barrier. Writing each variable before the next
        is read lets the compiler free one variable's temporaries before the
        next variable's exist. `step` is t of the paper, counted from 1.
        """
        ratios = []
        after = None
        for k, (index, g) in enumerate(zip(indices, grads)):
            x_ref, *slot_refs = refs[k]
            dtype = self._trainable_variables[index].dtype
            new_x, new_slots, ratio = self._update_variable(
                index,
                access.read(x_ref, dtype),
                g,
                [access.read(r, dtype) for r in slot_refs],
                learning_rate,
                step,
                access.barrier,
                after,
            )
            if self._adapts[index]:
                after = ratio
            access.write(x_ref, new_x)
            for r, value in zip(slot_refs, new_slots):
                access.write(r, value)
            ratios.append(ratio)
        ratio_ref = refs[-1]
        ratios = ops.stack(ratios)
        if list(indices) != list(range(len(self._trainable_variables))):
            old = access.read(ratio_ref, "float32")
            ratios = ops.scatter_update(old, [[i] for i in indices], ratios)
        access.write(ratio_ref, ratios)

    def _references(self, variables):
        """Per variable: (variable, its slots...), then the ratio vector."""
        indices = tuple(self._get_variable_index(v) for v in variables)
        refs = [(v, *(s[i] for s in self._slots)) for v, i in zip(variables, indices)]
        return indices, refs + [self._trust_ratio]

    # --------------------------------------------------------- the dispatch

    def update_step(self, gradient, variable, learning_rate):
        self._update_variables([gradient], [variable], learning_rate)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() != "tensorflow":
            self._update_variables(grads, trainable_variables, learning_rate)
            return
        from lamb_tf import tf_dispatch

        if self._compiled_apply is None:
            self._compiled_apply = tf_dispatch.compile_apply(
                self._apply_layerwise, self.jit_compile, self._distribution_strategy
            )
        indices, refs = self._references(trainable_variables)
        tf_dispatch.update_on_each_replica(
            self._distribution_strategy,
            self._all_reduce_sum_gradients,
            grads,
            trainable_variables,
            indices,
            refs,
            self._compiled_apply,
            learning_rate,
            self.iterations,
        )

    def _update_variables(self, grads, variables, learning_rate):
        """Backend-neutral path (JAX, where the whole train step is jitted)."""
        indices, refs = self._references(variables)
        self._apply_layerwise(
            indices,
            list(grads),
            refs,
            access.keras_variables(self.assign),
            learning_rate,
            self.iterations + 1,
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

    @property
    def variable_rules(self):
        """What the exclusion lists decided, as `{variable path: {"weight_decay":
        bool, "layer_adaptation": bool}}` (True: applied to that variable)."""
        self._check_built("variable_rules")
        return {
            variable_path(v): {"weight_decay": decays, "layer_adaptation": adapts}
            for v, decays, adapts in zip(self._trainable_variables, self._decays, self._adapts)
        }

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
