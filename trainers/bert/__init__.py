"""BERT pretraining and fine-tuning with the paper's LAMB schedule.

main, train   the pretraining command and job (`train(...)`)
cli, errors, settings   what every command shares: one-line errors with
              an exit status, and checks of settings
run/          a run's life, shared by pretraining and fine-tuning: the
              host loop, recovery, preemption, identity, progress
model/        the BERT model and what a run trains on it (tasks)
engines/      where the steps run: tf.distribute or Keras' JAX backend
formats/      models in and out: keras-hub presets, google-research/bert
              checkpoints, warm start, the tokenizer with offsets
data/         the data program: raw text, pretraining shards, input
finetune/     SQuAD, GLUE and the built-in task, with the SQuAD metric
"""

from trainers import stack
from trainers.bert import cli

stack.check()  # from package metadata: a broken install stops here, named
stack.skip_libtpu_without_chips()
cli.quiet_tensorflow()  # before any module here loads TensorFlow
