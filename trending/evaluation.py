"""Metrics and per-genre decision thresholds for multi-label genre predictions."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, default: float = 0.5) -> list[float]:
    """Pick, per genre, the threshold on ``THRESHOLD_GRID`` that maximises that genre's F1.

    Tune on validation data, never on the test split. A genre with no positive example keeps
    ``default``; ties go to the higher threshold (fewer false positives).
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape:
        raise ValueError(f"labels {y_true.shape} and scores {scores.shape} differ in shape")
    thresholds = []
    for g in range(y_true.shape[1]):
        if y_true[:, g].sum() == 0:
            thresholds.append(default)
            continue
        f1s = [f1_score(y_true[:, g], scores[:, g] >= t, zero_division=0) for t in THRESHOLD_GRID]
        best = max(range(len(THRESHOLD_GRID)), key=lambda i: (f1s[i], THRESHOLD_GRID[i]))
        thresholds.append(float(THRESHOLD_GRID[best]))
    return thresholds


def apply_thresholds(scores: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Multi-hot predictions: 1 where a genre's score reaches its threshold."""
    return (np.asarray(scores) >= np.asarray(thresholds)[None, :]).astype(np.int8)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro, macro and samples F1 of multi-hot predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
        "support": int(len(y_true)),
    }
