"""BERT pretraining: the training program (`train`, `loop`, `recovery`, and
an engine: `tf_engine/` or `jax_engine/`) over the data program in `data/`."""

from trainers import stack
from trainers.bert import cli

stack.check()  # from package metadata: a broken install stops here, named
stack.skip_libtpu_without_chips()
cli.quiet_tensorflow()  # before any module here loads TensorFlow
