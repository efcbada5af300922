"""GLUE's metrics against hand-computed values."""

import numpy as np
import pytest

from trainers.bert.finetune import metrics


def test_accuracy_and_f1():
    labels, predictions = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert metrics.accuracy(labels, predictions) == pytest.approx(3 / 5)
    # tp 2, fp 1, fn 1: precision 2/3, recall 2/3.
    assert metrics.f1(labels, predictions) == pytest.approx(2 / 3)
    assert metrics.f1([0, 0], [0, 0]) == 0.0


def test_matthews_correlation():
    # tp 2, tn 1, fp 1, fn 1: (2 - 1) / sqrt(3 * 3 * 2 * 2) = 1/6.
    assert metrics.matthews_corrcoef([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(1 / 6)
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef([1, 0, 1], [0, 1, 0]) == pytest.approx(-1.0)
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == 0.0  # a constant prediction


def test_pearson_and_spearman_with_ties():
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0]
    assert metrics.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert metrics.spearman(x, y) == pytest.approx(1.0)
    # Ties share their mean rank: [1, 2.5, 2.5, 4] against [1, 2, 3, 4].
    assert list(metrics.ranks([0.1, 0.5, 0.5, 0.9])) == [1.0, 2.5, 2.5, 4.0]
    expected = np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1]
    assert metrics.spearman([0.1, 0.5, 0.5, 0.9], [1, 2, 3, 4]) == pytest.approx(expected)
