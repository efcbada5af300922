"""What a run trains: the model on the encoder, its loss and figures, and how
its records are read. The engines and the host loop ask only this of it, so
pretraining and fine-tuning share them.

A task's loss is written with sums over the batch: each replica (and each
micro-batch) computes `batch_sums` of its part, the normalisers (`totals`)
are summed over the global batch first, so k accumulated micro-batches on n
replicas give exactly the gradient of the whole batch.

Interface (`Pretraining` is the reference):
    inputs            the batch features the model takes
    sums              names of `batch_sums`' values
    shown             (figure, label) pairs for the progress line
    build(config)     the Keras model (built under the engine's scope)
    totals(batch)     this part's normalisers, added over the global batch
    batch_sums(outputs, batch)
    loss(sums, totals)   this part's loss (normalised by the global totals)
    figures(sums)     means of summed `batch_sums`: "loss" and the rest
    flops_per_sequence(config, phase)
    parser(phase, names)  serialized records -> a batch (in tf.data)
    rate_factors(model)   each trainable variable's learning-rate factor
                          (layer-wise decay), or None
"""

from keras import ops

from trainers.bert.model import bert as model_lib
from trainers.bert.run import flops


class Pretraining:
    """Masked LM and next-sentence prediction on the google-research/bert
    records."""

    inputs = model_lib.INPUTS
    sums = model_lib.SUMS
    shown = (("mlm_accuracy", "mlm_acc"), ("nsp_accuracy", "nsp_acc"))

    def build(self, config):
        return model_lib.build_pretraining_model(config)

    def totals(self, batch):
        return ops.stack(
            [
                ops.sum(ops.cast(batch["masked_lm_weights"], "float32")),
                ops.cast(ops.shape(batch["next_sentence_labels"])[0], "float32"),
            ]
        )

    def batch_sums(self, outputs, batch):
        return ops.stack(model_lib.pretraining_sums(outputs, batch))

    def loss(self, sums, totals):
        totals = ops.maximum(totals, ops.convert_to_tensor([1e-6, 1.0]))
        return sums[0] / totals[0] + sums[3] / totals[1]

    def figures(self, sums):
        return {k: float(v) for k, v in model_lib.losses_from_sums(sums).items()}

    def flops_per_sequence(self, config, phase):
        return flops.training_flops_per_sequence(config, phase.seq_length, phase.max_predictions)

    def rate_factors(self, model):
        return None

    def parser(self, phase, names):
        from trainers.bert.data.input import pipeline

        return pipeline.pretraining_parser(phase.seq_length, phase.max_predictions, names)


PRETRAINING = Pretraining()
