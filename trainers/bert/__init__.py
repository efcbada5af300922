"""BERT pretraining: the training program (`train`, `loop`, `recovery`, an
engine in `tf_engine/`) over the data program in `data/`."""

from trainers.bert import cli

cli.quiet_tensorflow()  # before any module here loads TensorFlow
