"""What the loop knows of a saved checkpoint, whichever engine wrote it."""

from typing import NamedTuple

import numpy as np


class Checkpoint(NamedTuple):
    """A saved checkpoint: its path, global step and phase index."""

    path: str
    step: int
    phase: int


def state_bytes(variables):
    """The size of one checkpoint of `variables` (bfloat16 copies are not
    saved)."""
    return sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
        for v in variables
        if v.dtype != "bfloat16"
    )
