"""Independent float64 NumPy losses, the reference for the trainer's."""

import numpy as np


def log_softmax(logits):
    x = np.asarray(logits, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def nll(logits, labels):
    """-log p(label) for each row of `logits`."""
    labels = np.asarray(labels).astype(int)[..., None]
    return -np.take_along_axis(log_softmax(logits), labels, -1)[..., 0]


def pretraining(outputs, batch):
    """Masked-LM cross-entropy averaged over the targets (each weighted by
    `masked_lm_weights`: empty slots count nothing) plus the mean
    next-sentence cross-entropy."""
    weights = np.asarray(batch["masked_lm_weights"], np.float64)
    mlm = nll(outputs["mlm_logits"], batch["masked_lm_ids"])
    nsp = nll(outputs["nsp_logits"], np.asarray(batch["next_sentence_labels"]).reshape(-1))
    return (mlm * weights).sum() / weights.sum() + nsp.mean()
