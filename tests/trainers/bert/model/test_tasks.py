"""The losses the engines minimise, against an independent float64 NumPy
cross-entropy on the model's own outputs: pretraining's masked LM weighted
by `masked_lm_weights` (empty prediction slots count nothing) plus next
sentence, on a batch of the built-in records; fine-tuning's classification,
regression and span losses on batches with padding. The weights are drawn
wide so that the logits spread and a loss that ignored the weights or the
padding could not agree by accident."""

import keras
import numpy as np
import pytest

from tests import float32, numpy_loss
from trainers.bert.data import patterns
from trainers.bert.data.input import pipeline
from trainers.bert.data.shards import builtin
from trainers.bert.finetune import heads
from trainers.bert.model import bert as model
from trainers.bert.model import tasks

SEQ, PREDICTIONS, BATCH = 32, 5, 16


def _spread(net, seed=0):
    """Every weight drawn from N(0, 0.5^2): logits far from uniform."""
    rng = np.random.default_rng(seed)
    net.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in net.get_weights()])


def _task_loss(task, net, batch):
    outputs = net({n: batch[n] for n in task.inputs}, training=False)
    return float(task.loss(task.batch_sums(outputs, batch), task.totals(batch))), outputs


def _tiny(**overrides):
    keras.utils.set_random_seed(0)
    return model.preset("tiny", vocabulary_size=builtin.VOCAB_SIZE, dropout=0.0, **overrides)


def test_pretraining_loss_is_the_weighted_masked_lm_plus_next_sentence_cross_entropy(
    builtin_data_dir,
):
    pattern, _ = builtin.shards(builtin_data_dir, SEQ, PREDICTIONS)
    dataset = pipeline.make_dataset(patterns.match_files(pattern), SEQ, PREDICTIONS, BATCH)
    batch = {k: v.numpy() for k, v in next(iter(dataset)).items()}
    # Empty slots as a short sequence's records hold them: position 0, id 0,
    # weight 0 (the last two slots of every other row).
    for name in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
        batch[name][::2, -2:] = 0
    weights = batch["masked_lm_weights"]
    net = model.build_pretraining_model(_tiny())
    _spread(net)
    got, outputs = _task_loss(tasks.PRETRAINING, net, batch)

    want = numpy_loss.pretraining(outputs, batch)
    mlm = numpy_loss.nll(outputs["mlm_logits"], batch["masked_lm_ids"])
    nsp = numpy_loss.nll(outputs["nsp_logits"], batch["next_sentence_labels"].reshape(-1))
    assert got == pytest.approx(want, rel=float32.SUMS_RTOL)
    # What the tolerance rules out: the empty slots counted, or the
    # masked-LM mean taken over slots rather than over targets.
    assert abs(mlm.mean() + nsp.mean() - want) > 10 * float32.SUMS_RTOL * want
    assert (
        abs((mlm * weights).sum() / weights.size + nsp.mean() - want)
        > 10 * float32.SUMS_RTOL * want
    )


def _finetuning_batch(rng, with_labels):
    """Eight sequences of 24 tokens, padded after 10 to 24 of them."""
    lengths = rng.integers(10, 25, size=8)
    mask = (np.arange(24)[None] < lengths[:, None]).astype("int32")
    batch = {
        "token_ids": (rng.integers(5, builtin.VOCAB_SIZE, (8, 24)) * mask).astype("int32"),
        "segment_ids": ((np.arange(24)[None] >= lengths[:, None] // 2) * mask).astype("int32"),
        "padding_mask": mask,
    }
    batch.update(with_labels(lengths))
    return batch


def test_classification_loss_is_the_mean_cross_entropy():
    rng = np.random.default_rng(1)
    batch = _finetuning_batch(rng, lambda _: {"label": rng.integers(0, 3, 8).astype("int32")})
    task = heads.Classification(num_labels=3)
    net = task.build(_tiny())
    _spread(net)
    got, outputs = _task_loss(task, net, batch)
    want = numpy_loss.nll(outputs["logits"], batch["label"]).mean()
    assert got == pytest.approx(want, rel=float32.SUMS_RTOL)


def test_regression_loss_is_the_mean_squared_error():
    rng = np.random.default_rng(2)
    batch = _finetuning_batch(rng, lambda _: {"label": rng.uniform(0, 5, 8).astype("float32")})
    task = heads.Classification(num_labels=None)
    net = task.build(_tiny())
    _spread(net)
    got, outputs = _task_loss(task, net, batch)
    want = np.mean((np.asarray(outputs["logits"], np.float64)[:, 0] - batch["label"]) ** 2)
    assert got == pytest.approx(want, rel=float32.SUMS_RTOL)


def test_span_loss_is_the_mean_of_the_start_and_end_cross_entropies():
    rng = np.random.default_rng(3)

    def positions(lengths):
        start = rng.integers(0, lengths // 2)
        return {"start_positions": start, "end_positions": start + rng.integers(0, lengths // 2)}

    batch = _finetuning_batch(rng, positions)
    task = heads.Span()
    net = task.build(_tiny())
    _spread(net)
    got, outputs = _task_loss(task, net, batch)
    # Over every position of the row, padding included, as
    # google-research/bert's run_squad takes its soft-max.
    start = numpy_loss.nll(outputs["start_logits"], batch["start_positions"])
    end = numpy_loss.nll(outputs["end_logits"], batch["end_positions"])
    want = ((start + end) / 2).mean()
    assert got == pytest.approx(want, rel=float32.SUMS_RTOL)
