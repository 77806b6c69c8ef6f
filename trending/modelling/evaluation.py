"""Metrics, per-genre thresholds, slices, calibration and the evaluation report of a candidate.

One ``EvaluationReport`` per candidate model: overall micro/macro/samples F1, per-genre
precision/recall/F1/support and PR-AUC, slice metrics (movie vs TV, decade, plot length, source),
calibration (ECE and the reliability table), robustness checks (trending.modelling.robustness) and the paths
of its plots. The gate (trending.modelling.gate) and the model card (trending.modelling.card) read only this report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)
# Plot length buckets in characters: [lower, upper) -> name.
PLOT_LENGTH_BUCKETS: tuple[tuple[int, int, str], ...] = (
    (0, 150, "short (<150 chars)"),
    (150, 300, "medium (150-299)"),
    (300, 600, "long (300-599)"),
    (600, 10**9, "very long (600+)"),
)
CALIBRATION_BINS = 10


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, default: float = 0.5) -> list[float]:
    """Pick, per genre, the threshold on ``THRESHOLD_GRID`` that maximises that genre's F1.

    Tune on validation data, never on the test split. A genre with no positive example keeps
    ``default``; ties go to the higher threshold (fewer false positives).
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape:
        raise ValueError(f"labels {y_true.shape} and scores {scores.shape} differ in shape")
    positives = y_true.sum(axis=0)
    # (thresholds, rows, genres) -> per threshold and genre: true and false positives.
    predicted = scores[None, :, :] >= THRESHOLD_GRID[:, None, None]
    tp = (predicted & (y_true[None] == 1)).sum(axis=1)
    fp = (predicted & (y_true[None] == 0)).sum(axis=1)
    denominator = 2 * tp + fp + (positives[None, :] - tp)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    thresholds = []
    for g in range(y_true.shape[1]):
        if positives[g] == 0:
            thresholds.append(default)
            continue
        # Highest F1; among equal F1 the higher threshold (argmax of the reversed grid).
        best = len(THRESHOLD_GRID) - 1 - int(np.argmax(f1[::-1, g]))
        thresholds.append(float(THRESHOLD_GRID[best]))
    return thresholds


def apply_thresholds(scores: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Multi-hot predictions: 1 where a genre's score reaches its threshold."""
    return (np.asarray(scores) >= np.asarray(thresholds)[None, :]).astype(np.int8)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro, macro and samples F1 of multi-hot predictions.

    Macro F1 averages over the genres that occur in ``y_true`` or ``y_pred`` (a genre absent from
    both carries no information and would count as 0).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = np.flatnonzero((y_true.sum(axis=0) + y_pred.sum(axis=0)) > 0)
    labels = present.tolist() if len(present) else None
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(
            f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        ),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
        "support": len(y_true),
    }


def row_counts(y_true: np.ndarray, y_pred: np.ndarray) -> list[tuple[int, int, int]]:
    """Per row: (true positives, false positives, false negatives) of multi-hot predictions."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(axis=1)
    fp = (~y_true & y_pred).sum(axis=1)
    fn = (y_true & ~y_pred).sum(axis=1)
    return [(int(a), int(b), int(c)) for a, b, c in zip(tp, fp, fn, strict=True)]


def paired_micro_f1_difference(
    ours: Sequence[Sequence[int]],
    theirs: Sequence[Sequence[int]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap distribution of micro-F1(ours) - micro-F1(theirs) over the same test rows.

    Rows are resampled together for both models (a paired bootstrap), so what both get right or
    wrong cancels and only their disagreements count.
    """
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"row counts of different test rows: {a.shape} vs {b.shape}")
    picks = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))

    def micro_f1(counts: np.ndarray) -> np.ndarray:
        totals = counts[picks].sum(axis=1)  # (resamples, 3)
        tp, fp, fn = totals[:, 0], totals[:, 1], totals[:, 2]
        denominator = 2 * tp + fp + fn
        return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)

    return micro_f1(a) - micro_f1(b)


# ---- report models ----------------------------------------------------------------------------


class GenreMetrics(BaseModel):
    """One genre's scores on the test rows."""

    genre: str
    precision: float
    recall: float
    f1: float
    support: int
    pr_auc: float | None = Field(None, description="Average precision; None without positives.")
    threshold: float


class SliceMetrics(BaseModel):
    """Metrics on one slice of the test rows, e.g. ``kind=tv`` or ``decade=1990s``."""

    name: str = Field(description="'<dimension>=<value>'")
    dimension: str
    value: str
    support: int
    micro_f1: float
    macro_f1: float
    samples_f1: float


class ReliabilityBin(BaseModel):
    """One bin of the reliability diagram over all (title, genre) scores."""

    lower: float
    upper: float
    count: int
    mean_score: float | None
    positive_rate: float | None


class Calibration(BaseModel):
    """Expected calibration error and the reliability table behind it."""

    ece: float
    bins: list[ReliabilityBin]


class RobustnessCheck(BaseModel):
    """One behavioural test: how many cases kept (or moved) the prediction as expected.

    Stability checks (perturbation, invariance) also carry the mean genre-set similarity
    (Jaccard) before and after the edit, the same under the null edit, and the difference
    (``excess_change``), which is what the gate bounds. Directional checks are gated on
    ``pass_rate``.
    """

    name: str
    kind: str = Field(description="perturbation | invariance | directional")
    description: str
    cases: int
    passed: int = Field(description="Cases with an unchanged genre set (directional: as expected).")
    pass_rate: float
    similarity: float | None = Field(
        None, description="Mean Jaccard similarity of the genre sets before and after the edit."
    )
    null_similarity: float | None = Field(
        None, description="The same under the null edit (function words dropped)."
    )
    excess_change: float | None = Field(
        None, description="null_similarity - similarity: the change the null edit does not explain."
    )
    mean_score_change: float | None = Field(
        None,
        description="Stability: mean of the largest per-genre score move; directional: mean "
        "score gain of the cue over its neutral twin.",
    )
    examples: list[dict[str, Any]] = Field(
        default_factory=list,
        description="A few failures, worst first: title, the edit, genres before and after.",
    )

    @property
    def stability(self) -> bool:
        """Whether this check is judged by its excess change (else by its pass rate)."""
        return self.excess_change is not None


class RobustnessReport(BaseModel):
    """All behavioural checks of a candidate."""

    checks: list[RobustnessCheck] = Field(default_factory=list)
    null_edit: str | None = Field(None, description="What the null edit does.")
    null_similarity: float | None = Field(
        None, description="Mean genre-set similarity of the texts under the null edit."
    )


class EvaluationReport(BaseModel):
    """Everything known about one candidate on one test split; JSON-serialisable."""

    model_config = ConfigDict(protected_namespaces=())

    model_family: str
    bundle_dir: str | None = None
    genres: list[str]
    thresholds: list[float]
    overall: dict[str, float]
    pr_auc: dict[str, float | None] = Field(default_factory=dict, description="micro, macro")
    per_genre: list[GenreMetrics] = Field(default_factory=list)
    slices: list[SliceMetrics] = Field(default_factory=list)
    calibration: Calibration | None = None
    robustness: RobustnessReport = Field(default_factory=RobustnessReport)
    plots: dict[str, str] = Field(default_factory=dict, description="name -> PNG path")
    data_snapshot_id: str | None = None
    code_version: str = "unknown"
    test_rows: int = 0
    row_counts: list[tuple[int, int, int]] | None = Field(
        None,
        description="Per test row (in order): true positives, false positives, false negatives; "
        "the gate's paired bootstrap against the baseline on the same rows reads them.",
    )
    train_seconds: float | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def slice(self, name: str) -> SliceMetrics | None:
        """The slice called ``name`` (e.g. ``kind=tv``), or None when it was not measured."""
        return next((s for s in self.slices if s.name == name), None)

    def write(self, path: Path) -> Path:
        """Write the report as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> EvaluationReport:
        """Read a report written by ``write``.

        Plot paths that no longer exist (the folder was copied, e.g. between pipeline steps) are
        looked up by file name next to the report.
        """
        path = Path(path)
        report = cls.model_validate_json(path.read_text())
        plots = {
            name: plot if Path(plot).is_file() else str(path.parent / Path(plot).name)
            for name, plot in report.plots.items()
        }
        return report.model_copy(update={"plots": plots})


# ---- metric pieces ----------------------------------------------------------------------------


def _average_precision(y: np.ndarray, s: np.ndarray) -> float | None:
    if y.sum() == 0:
        return None
    return float(average_precision_score(y, s))


def per_genre_metrics(
    y_true: np.ndarray, scores: np.ndarray, thresholds: Sequence[float], genres: Sequence[str]
) -> list[GenreMetrics]:
    """Precision, recall, F1, support and PR-AUC of every genre at its threshold."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    y_pred = apply_thresholds(scores, list(thresholds))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, labels=list(range(len(genres))), zero_division=0
    )
    return [
        GenreMetrics(
            genre=genre,
            precision=float(precision[g]),
            recall=float(recall[g]),
            f1=float(f1[g]),
            support=int(support[g]),
            pr_auc=_average_precision(y_true[:, g], scores[:, g]),
            threshold=float(thresholds[g]),
        )
        for g, genre in enumerate(genres)
    ]


def pr_auc_summary(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Micro PR-AUC (all pairs pooled) and macro PR-AUC (mean over genres with positives)."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    per = [_average_precision(y_true[:, g], scores[:, g]) for g in range(y_true.shape[1])]
    known = [p for p in per if p is not None]
    return {
        "micro": _average_precision(y_true.ravel(), scores.ravel()),
        "macro": float(np.mean(known)) if known else None,
    }


def calibration(
    y_true: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> Calibration:
    """Expected calibration error over all (title, genre) pairs, with equal-width bins.

    ECE = sum over bins of (bin count / total) * |mean score - positive rate|.
    """
    y = np.asarray(y_true, dtype=float).ravel()
    s = np.clip(np.asarray(scores, dtype=float).ravel(), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(s, edges[1:-1], right=False), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        mean_score = float(s[mask].mean()) if count else None
        positive_rate = float(y[mask].mean()) if count else None
        if count:
            ece += count / len(s) * abs(mean_score - positive_rate)  # type: ignore[operator]
        table.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                mean_score=mean_score,
                positive_rate=positive_rate,
            )
        )
    return Calibration(ece=float(ece), bins=table)


def slice_columns(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The slice dimensions a frame supports: kind, decade, plot length, source."""
    dims: dict[str, pd.Series] = {}
    if "kind" in frame:
        dims["kind"] = frame["kind"].astype(str)
    if "year" in frame:
        years = pd.to_numeric(frame["year"], errors="coerce")
        dims["decade"] = years.map(
            lambda y: "unknown" if pd.isna(y) or y <= 0 else f"{int(y) // 10 * 10}s"
        )
    if "plot" in frame:
        lengths = frame["plot"].astype(str).str.len()
        dims["plot_length"] = lengths.map(
            lambda n: next(name for lo, hi, name in PLOT_LENGTH_BUCKETS if lo <= n < hi)
        )
    if "source" in frame:
        dims["source"] = frame["source"].astype(str)
    return dims


def slice_metrics(
    frame: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, *, min_support: int = 1
) -> list[SliceMetrics]:
    """Metrics per value of every slice dimension with at least ``min_support`` rows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = []
    for dimension, values in slice_columns(frame.reset_index(drop=True)).items():
        for value in sorted(values.unique()):
            mask = (values == value).to_numpy()
            if mask.sum() < min_support:
                continue
            m = classification_metrics(y_true[mask], y_pred[mask])
            out.append(
                SliceMetrics(
                    name=f"{dimension}={value}",
                    dimension=dimension,
                    value=str(value),
                    support=int(mask.sum()),
                    micro_f1=m["micro_f1"],
                    macro_f1=m["macro_f1"],
                    samples_f1=m["samples_f1"],
                )
            )
    return out


# ---- plots ------------------------------------------------------------------------------------


def write_plots(report: EvaluationReport, out_dir: Path) -> dict[str, str]:
    """Reliability diagram, per-genre F1 and slice F1 as PNGs (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}

    if report.calibration is not None:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        used = [b for b in report.calibration.bins if b.count]
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
        ax.plot([b.mean_score for b in used], [b.positive_rate for b in used], "o-", label="model")
        ax.set(
            xlabel="mean predicted score",
            ylabel="share of positives",
            title=f"Reliability ({report.model_family}), ECE={report.calibration.ece:.3f}",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax.legend(loc="upper left")
        paths["reliability"] = _save(fig, out_dir / "reliability.png")

    if report.per_genre:
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(report.per_genre) + 1.2))
        ax.barh([g.genre for g in report.per_genre], [g.f1 for g in report.per_genre])
        ax.invert_yaxis()
        ax.set(xlabel="F1 at the tuned threshold", xlim=(0, 1), title="Per-genre F1")
        paths["per_genre_f1"] = _save(fig, out_dir / "per_genre_f1.png")

    if report.slices:
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(report.slices) + 1.2))
        ax.barh(
            [f"{s.name} (n={s.support})" for s in report.slices],
            [s.micro_f1 for s in report.slices],
        )
        ax.invert_yaxis()
        ax.set(xlabel="micro-F1", xlim=(0, 1), title="Slices")
        paths["slices"] = _save(fig, out_dir / "slices.png")
    plt.close("all")
    return paths


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return str(path)


# ---- the report -------------------------------------------------------------------------------


def build_report(
    *,
    model_family: str,
    genres: Sequence[str],
    thresholds: Sequence[float],
    frame: pd.DataFrame,
    y_true: np.ndarray,
    scores: np.ndarray,
    robustness: RobustnessReport | None = None,
    min_slice_support: int = 1,
    **fields: Any,
) -> EvaluationReport:
    """Assemble the report from labels and scores of the test rows (no plots, no I/O)."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape:
        raise ValueError(f"labels {y_true.shape} and scores {scores.shape} differ in shape")
    y_pred = apply_thresholds(scores, list(thresholds))
    return EvaluationReport(
        model_family=model_family,
        genres=list(genres),
        thresholds=[float(t) for t in thresholds],
        overall=classification_metrics(y_true, y_pred),
        pr_auc=pr_auc_summary(y_true, scores),
        per_genre=per_genre_metrics(y_true, scores, thresholds, genres),
        slices=slice_metrics(frame, y_true, y_pred, min_support=min_slice_support),
        calibration=calibration(y_true, scores),
        robustness=robustness or RobustnessReport(),
        test_rows=len(y_true),
        row_counts=row_counts(y_true, y_pred),
        **fields,
    )
