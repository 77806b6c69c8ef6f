"""Metrics against hand-computed values, and threshold tuning."""

from __future__ import annotations

import numpy as np
import pytest

from trending.evaluation import apply_thresholds, classification_metrics, tune_thresholds


def test_f1_matches_hand_computation():
    y_true = np.array([[1, 0], [1, 1], [0, 1]])
    y_pred = np.array([[1, 1], [1, 0], [0, 1]])
    metrics = classification_metrics(y_true, y_pred)
    # micro: tp=3, fp=1, fn=1 -> 6 / (6 + 2)
    assert metrics["micro_f1"] == pytest.approx(0.75)
    # per genre: g0 tp=2 fp=0 fn=0 -> 1.0; g1 tp=1 fp=1 fn=1 -> 0.5
    assert metrics["macro_f1"] == pytest.approx(0.75)
    # per sample: 2/3, 2/3, 1
    assert metrics["samples_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_thresholds_separate_the_classes_and_default_when_no_positive():
    y_true = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.7, 0.2], [0.3, 0.3], [0.2, 0.9]])
    thresholds = tune_thresholds(y_true, scores)
    assert 0.3 < thresholds[0] <= 0.7
    assert thresholds[1] == 0.5
    assert apply_thresholds(scores, thresholds)[:, 0].tolist() == [1, 1, 0, 0]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        tune_thresholds(np.zeros((2, 2)), np.zeros((2, 3)))
