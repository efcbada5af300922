"""GLUE's metrics in NumPy: accuracy, F1 of the positive class, Matthews
correlation (CoLA), Pearson and Spearman correlation (STS-B)."""

import numpy as np


def accuracy(labels, predictions):
    return float(np.mean(np.asarray(labels) == np.asarray(predictions)))


def f1(labels, predictions, positive=1):
    labels, predictions = np.asarray(labels) == positive, np.asarray(predictions) == positive
    true_positives = np.sum(labels & predictions)
    if true_positives == 0:
        return 0.0
    precision = true_positives / np.sum(predictions)
    recall = true_positives / np.sum(labels)
    return float(2 * precision * recall / (precision + recall))


def matthews_corrcoef(labels, predictions):
    """Binary Matthews correlation; 0 where a row or column of the
    confusion matrix is empty (as scikit-learn)."""
    labels, predictions = np.asarray(labels) == 1, np.asarray(predictions) == 1
    tp = float(np.sum(labels & predictions))
    tn = float(np.sum(~labels & ~predictions))
    fp = float(np.sum(~labels & predictions))
    fn = float(np.sum(labels & ~predictions))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pearson(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def ranks(values):
    """Ranks from 1, ties sharing their mean rank (as Spearman's needs)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranked)
    return (sums / counts)[inverse]


def spearman(x, y):
    return pearson(ranks(x), ranks(y))
