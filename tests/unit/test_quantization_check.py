"""The export-time check of a quantized variant against its fp32 scores."""

from __future__ import annotations

import numpy as np

from trending.modelling.bundle.quantization import QuantizationLimits, compare_quantized

Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 25, dtype=np.int8)
FP32 = np.where(Y == 1, 0.8, 0.2).astype(np.float32)
THRESHOLDS = [0.5, 0.5]


def test_scores_that_move_a_little_pass() -> None:
    check = compare_quantized(FP32, FP32 + 0.01, Y, THRESHOLDS)
    assert check.passed and check.name == "quantization"
    assert check.observed == 0.0


def test_one_flipped_label_in_a_hundred_rows_loses_too_much_micro_f1() -> None:
    quantized = FP32.copy()
    quantized[0, 0] = 0.45  # below the threshold: one true genre lost
    check = compare_quantized(FP32, quantized, Y, THRESHOLDS)
    assert not check.passed
    assert check.observed > QuantizationLimits().max_f1_loss
    assert "keeps fp32" in check.message


def test_a_large_score_move_fails_even_when_no_label_flips() -> None:
    quantized = FP32.copy()
    quantized[1, 0] = 0.45  # 0.2 -> 0.45: still under the threshold, but far from fp32
    check = compare_quantized(FP32, quantized, Y, THRESHOLDS)
    assert check.observed == 0.0
    assert not check.passed
    assert compare_quantized(
        FP32, quantized, Y, THRESHOLDS, QuantizationLimits(max_score_difference=0.3)
    ).passed


def test_scores_of_different_rows_cannot_pass() -> None:
    assert not compare_quantized(FP32, FP32[:10], Y, THRESHOLDS).passed
