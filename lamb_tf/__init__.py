"""Paper-faithful LAMB and LARS for Keras 3, and the schedules of the LAMB recipe.

import lamb_tf
model.compile(optimizer=lamb_tf.LAMB(learning_rate=1e-3, weight_decay=0.01,
                                     exclude_from_weight_decay=["layer_norm", "bias"]))

The modules:

    lamb.py, lars.py        each algorithm's update direction, arguments, docs
    layerwise.py            what they share: exclusions -> direction -> trust ratio -> step,
                            diagnostics, configuration; owns its compiled update
    trust_ratio.py          the ratio, its zero rule and bounds, written once; the norms
    jax_norms.py            JAX: both norms in one variadic reduction (XLA:CPU fuses it)
    exclusions.py           regular expressions over variable paths
    access.py               how an update reads/writes a backend's state (a leaf)
    tf_dispatch.py          TensorFlow: one XLA-compiled update per replica (-> access)
    schedules.py            warmup/polynomial decay, multi-phase, sqrt scaling
    validation.py           argument checks that name argument and value
    private_api.py          the private Keras/TensorFlow names relied on, and why
"""

from lamb_tf import schedules
from lamb_tf.lamb import LAMB
from lamb_tf.lars import LARS
from lamb_tf.layerwise import LayerwiseOptimizer

__version__ = "0.1.0"
__all__ = ["LAMB", "LARS", "LayerwiseOptimizer", "schedules"]
