"""Layer-wise learning-rate decay (Clark et al. 2020, ELECTRA): the head
trains at the full rate, the top encoder layer at `decay` times it, each
layer below at `decay` times the rate of the one above, the embeddings below
the lowest layer.

    factor = decay ** (L - l)   for transformer layer l of L (0 is the lowest)
    factor = decay ** (L + 1)   for the embeddings and their LayerNorm
    factor = 1                  for the pooler and the task's head

The engine applies it to any optimizer whose step is linear in the learning
rate (AdamW with its decoupled decay, LAMB, LARS): after the update, each
variable's change is scaled by its factor, which is that step at factor x
the rate (`tf_engine.steps`).
"""

import re

_LAYER = re.compile(r"(?:^|/)transformer_layer_(\d+)/")
_EMBEDDINGS = (
    "token_embedding/",
    "position_embedding/",
    "segment_embedding/",
    "embeddings_layer_norm/",
)


def factors(variables, num_layers, decay):
    """The factor of each of `variables` (keras-hub BertBackbone paths)."""
    result = []
    for variable in variables:
        layer = _LAYER.search(variable.path)
        if layer:
            result.append(decay ** (num_layers - int(layer.group(1))))
        elif variable.path.startswith(_EMBEDDINGS):
            result.append(decay ** (num_layers + 1))
        else:
            result.append(1.0)
    return result
