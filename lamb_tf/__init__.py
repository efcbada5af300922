"""Paper-faithful LAMB and LARS for Keras 3, and the schedules of the LAMB recipe.

import lamb_tf
model.compile(optimizer=lamb_tf.LAMB(learning_rate=1e-3, weight_decay=0.01,
                                     exclude_from_weight_decay=["layer_norm", "bias"]))
"""

from lamb_tf import schedules
from lamb_tf.lamb import LAMB
from lamb_tf.lars import LARS
from lamb_tf.layerwise import LayerwiseOptimizer

__version__ = "0.1.0"
__all__ = ["LAMB", "LARS", "LayerwiseOptimizer", "schedules"]
