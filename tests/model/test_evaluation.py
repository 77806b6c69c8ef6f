"""Metrics, PR-AUC, calibration and slices against hand-computed values; threshold tuning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from trending.modelling.evaluation import (
    THRESHOLD_GRID,
    EvaluationReport,
    apply_thresholds,
    build_report,
    calibration,
    classification_metrics,
    paired_micro_f1_difference,
    per_genre_metrics,
    pr_auc_summary,
    row_counts,
    slice_metrics,
    tune_thresholds,
)


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


def test_per_genre_metrics_and_pr_auc_match_hand_computation():
    y_true = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.6], [0.4, 0.2], [0.6, 0.8], [0.1, 0.7]])
    [g0, g1] = per_genre_metrics(y_true, scores, [0.5, 0.5], ["A", "B"])
    # g0 predicted [1,0,1,0]: tp=1 fp=1 fn=1
    assert (g0.precision, g0.recall, g0.f1, g0.support) == (0.5, 0.5, 0.5, 2)
    # g0 ranking 0.9(+) 0.6(-) 0.4(+) 0.1(-): AP = (1/1 + 2/3) / 2
    assert g0.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    # g1 predicted [1,0,1,1]: tp=1 fp=2 fn=1
    assert g1.precision == pytest.approx(1 / 3) and g1.recall == 0.5
    summary = pr_auc_summary(y_true, scores)
    assert summary["macro"] == pytest.approx((g0.pr_auc + g1.pr_auc) / 2)


def test_expected_calibration_error_matches_hand_computation():
    y_true = np.array([[1], [0], [1], [1]])
    scores = np.array([[0.05], [0.05], [0.95], [0.95]])
    result = calibration(y_true, scores, bins=10)
    # bin 0: mean 0.05, positives 1/2 -> gap 0.45; bin 9: mean 0.95, positives 1 -> gap 0.05
    assert result.ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert [b.count for b in result.bins if b.count] == [2, 2]


def test_slices_cover_kind_decade_plot_length_and_source():
    frame = pd.DataFrame(
        {
            "kind": ["movie", "movie", "tv", "tv"],
            "year": [1995, 1999, 2012, None],
            "plot": ["x" * 100, "x" * 200, "x" * 400, "x" * 700],
            "source": ["a", "a", "a", "b"],
        }
    )
    y_true = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    y_pred = np.array([[1, 0], [0, 0], [0, 1], [0, 1]])
    slices = {s.name: s for s in slice_metrics(frame, y_true, y_pred)}
    assert slices["kind=tv"].micro_f1 == 1.0 and slices["kind=tv"].support == 2
    assert slices["kind=movie"].micro_f1 == pytest.approx(2 / 3)  # tp=1 fn=1
    assert {"decade=1990s", "decade=2010s", "decade=unknown"} <= set(slices)
    assert slices["plot_length=short (<150 chars)"].support == 1
    assert slices["source=b"].support == 1


def test_report_round_trips_through_json(tmp_path):
    y = np.array([[1, 0], [0, 1]])
    report = build_report(
        model_family="linear",
        genres=["A", "B"],
        thresholds=[0.5, 0.5],
        frame=pd.DataFrame({"plot": ["a", "b"]}),
        y_true=y,
        scores=y * 0.9,
    )
    path = report.write(tmp_path / "report.json")
    assert EvaluationReport.read(path) == report


def test_vectorised_threshold_tuning_matches_per_threshold_f1():
    rng = np.random.default_rng(4)
    y_true = (rng.random((60, 4)) < 0.3).astype(int)
    scores = np.clip(y_true * 0.3 + rng.random((60, 4)) * 0.7, 0, 1)
    expected = []
    for g in range(4):
        f1s = [f1_score(y_true[:, g], scores[:, g] >= t, zero_division=0) for t in THRESHOLD_GRID]
        best = max(range(len(THRESHOLD_GRID)), key=lambda i: (round(f1s[i], 12), THRESHOLD_GRID[i]))
        expected.append(float(THRESHOLD_GRID[best]))
    assert tune_thresholds(y_true, scores) == expected


def test_row_counts_and_the_paired_bootstrap_of_micro_f1():
    y_true = np.array([[1, 0], [1, 1], [0, 1]])
    y_pred = np.array([[1, 1], [1, 0], [0, 1]])
    assert row_counts(y_true, y_pred) == [(1, 1, 0), (1, 0, 1), (1, 0, 0)]
    counts = row_counts(y_true, y_pred)
    assert np.all(paired_micro_f1_difference(counts, counts) == 0)  # paired: ties cancel
    perfect = row_counts(y_true, y_true)
    gaps = paired_micro_f1_difference(perfect, counts, resamples=500)
    assert gaps.min() >= 0 and gaps.mean() == pytest.approx(0.25, abs=0.08)  # 1.0 vs 0.75
