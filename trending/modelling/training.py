"""Train model families on labelled titles, write bundles, and evaluate candidates.

``train_bundle`` fits one family and writes a bundle (thresholds tuned on a validation split of
the training rows, never on test). ``evaluate_candidate`` turns a bundle plus the test rows into
an ``EvaluationReport`` (metrics, slices, calibration, robustness, plots). ``train_candidates``
trains the challengers (XGBoost, BERT) and the baselines (prior, linear) on the same rows, so the
gate and ``choose_champion`` compare like with like.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, train_test_split

from trending.features.featurize import texts_of
from trending.genres import GenreVocabulary
from trending.modelling.bundle import UNSIGNED_OK, BundleManifest, verify_bundle, write_manifest
from trending.modelling.evaluation import (
    EvaluationReport,
    apply_thresholds,
    build_report,
    classification_metrics,
    tune_thresholds,
    write_plots,
)
from trending.modelling.families.base import GenreModel, load_model, model_family

MIN_TRAINING_ROWS = 20
CHALLENGER_FAMILIES = ("xgboost", "bert")
BASELINE_FAMILIES = ("prior", "linear")
THRESHOLD_FOLDS = 4  # out-of-fold fits for families without their own validation split


def code_version() -> str:
    """The git commit of the running code, or 'unknown' outside a checkout (e.g. in an image)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def split_labelled(
    frame: pd.DataFrame, *, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded random split into (train, held-out) after dropping unlabeled rows."""
    labelled = _labelled_rows(frame, MIN_TRAINING_ROWS, "training")
    train, held_out = train_test_split(labelled, test_size=test_size, random_state=seed)
    return train.reset_index(drop=True), held_out.reset_index(drop=True)


def with_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ``reviews`` column (empty lists when absent, e.g. plot-only data sets)."""
    if "plot" not in frame:
        raise ValueError(
            f"rows need a 'plot' column to build model input; got {list(frame.columns)}"
        )
    if "reviews" in frame:
        return frame
    return frame.assign(reviews=[[] for _ in range(len(frame))])


def cross_fitted_scores(
    make_model: Callable[[], GenreModel],
    texts: Sequence[str],
    labels: np.ndarray,
    *,
    folds: int,
    seed: int,
) -> np.ndarray:
    """Out-of-fold scores for every row: each fold scored by a model fitted on the others."""
    scores = np.zeros(labels.shape, dtype=np.float32)
    for fit_rows, held_rows in KFold(folds, shuffle=True, random_state=seed).split(labels):
        model = make_model()
        model.fit([texts[i] for i in fit_rows], labels[fit_rows])
        scores[held_rows] = model.predict_proba([texts[i] for i in held_rows])
    return scores


def train_bundle(
    train: pd.DataFrame,
    output_dir: Path,
    *,
    family: str = "xgboost",
    vocabulary: GenreVocabulary | None = None,
    params: dict[str, Any] | None = None,
    data_snapshot_id: str | None = None,
    seed: int = 7,
) -> BundleManifest:
    """Fit ``family`` on the labelled rows of ``train``, tune thresholds, write the bundle.

    Per-genre thresholds are tuned on scores of rows the model did not fit: the model's own
    validation split when it keeps one (BERT and XGBoost hold rows out for early stopping),
    otherwise out-of-fold scores from ``THRESHOLD_FOLDS`` extra fits (the cheap baselines), so
    the bundle's model itself is fitted on every row. The bundle's metrics hold the validation
    scores and the training wall time; test metrics are added by ``evaluate_bundle``.
    """
    vocabulary = vocabulary or GenreVocabulary()
    labelled = with_text_columns(_labelled_rows(train, MIN_TRAINING_ROWS, "training"))
    texts, labels = texts_of(labelled), vocabulary.encode(labelled["genres"])

    def make_model() -> GenreModel:
        return model_family(family)(**{"seed": seed, **(params or {})})

    model = make_model()
    started = time.perf_counter()
    model.fit(texts, labels)
    train_seconds = time.perf_counter() - started
    held_out = model.held_out_scores() if hasattr(model, "held_out_scores") else None
    if held_out is not None:
        valid_rows, valid_scores = held_out
    else:
        valid_rows = np.arange(len(labels))
        valid_scores = cross_fitted_scores(
            make_model, texts, labels, folds=THRESHOLD_FOLDS, seed=seed
        )
    y_valid = labels[valid_rows]
    thresholds = tune_thresholds(y_valid, valid_scores)
    valid_metrics = classification_metrics(y_valid, apply_thresholds(valid_scores, thresholds))

    output_dir = Path(output_dir)
    featurizer = model.save(output_dir / "model")
    return write_manifest(
        output_dir,
        BundleManifest(
            model_family=family,  # type: ignore[arg-type]
            genres=list(vocabulary.genres),
            thresholds=thresholds,
            featurizer=featurizer,
            metrics={"validation": valid_metrics, "train_seconds": round(train_seconds, 3)},
            data_snapshot_id=data_snapshot_id,
            code_version=code_version(),
            params={
                **getattr(model, "params", {}),
                "seed": seed,
                "train_rows": len(labels),
                "threshold_rows": len(valid_rows),
                "thresholds_from": "validation split" if held_out else "out-of-fold scores",
            },
        ),
    )


def train_candidates(
    train: pd.DataFrame,
    output_root: Path,
    *,
    families: Sequence[str] = (*CHALLENGER_FAMILIES, *BASELINE_FAMILIES),
    params: Mapping[str, dict[str, Any]] | None = None,
    vocabulary: GenreVocabulary | None = None,
    data_snapshot_id: str | None = None,
    seed: int = 7,
) -> dict[str, Path]:
    """Train every family on the same rows into ``output_root/<family>``.

    Args:
        train: Labelled training rows.
        output_root: Parent folder; one bundle folder per family is created in it.
        families: Families to train; the default is both challengers and both baselines.
        params: Parameters per family, e.g. ``{"bert": {"epochs": 1}}``.
        vocabulary: Genre vocabulary (default: the 19 TMDb genres).
        data_snapshot_id: Recorded in every manifest.
        seed: The same seed for every family (same validation split for thresholds).

    Returns:
        Bundle folder per family.
    """
    params = params or {}
    unknown = set(params) - set(families)
    if unknown:
        raise ValueError(f"params given for families that are not trained: {sorted(unknown)}")
    bundles = {}
    for family in families:
        directory = Path(output_root) / family
        train_bundle(
            train,
            directory,
            family=family,
            vocabulary=vocabulary,
            params=params.get(family),
            data_snapshot_id=data_snapshot_id,
            seed=seed,
        )
        bundles[family] = directory
    return bundles


def score_predictor_on(predictor: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Metrics of a loaded ``GenrePredictor`` on labelled rows."""
    vocabulary = GenreVocabulary(predictor.genres)
    y_true = vocabulary.encode(frame["genres"])
    scores = predictor.scores(texts_of(with_text_columns(frame)))
    return classification_metrics(y_true, apply_thresholds(scores, predictor.manifest.thresholds))


def _labelled_rows(frame: pd.DataFrame, min_rows: int = 1, purpose: str = "test") -> pd.DataFrame:
    """The rows with at least one genre; at least ``min_rows`` of them, or a clear error."""
    labelled = frame[frame["genres"].map(len) > 0].reset_index(drop=True)
    if len(labelled) < min_rows:
        raise ValueError(
            f"only {len(labelled)} labelled rows in the {purpose} data; "
            f"at least {min_rows} are needed"
        )
    return labelled


def candidate_predictor(bundle_dir: Path) -> Any:
    """A ``GenrePredictor`` for a bundle this pipeline trained and has not registered yet.

    Verified as every bundle is (format, no pickle, checksums), but no signature is asked for
    even where a public key is configured: the register step signs the bundle it registers.
    """
    from trending.modelling.families.predictor import GenrePredictor

    manifest = verify_bundle(bundle_dir, trust=UNSIGNED_OK)
    return GenrePredictor(manifest, load_model(bundle_dir, manifest.model_family))


def evaluate_bundle(bundle_dir: Path, test: pd.DataFrame) -> BundleManifest:
    """Score a bundle on held-out rows and record the test metrics in its manifest."""
    predictor = candidate_predictor(bundle_dir)
    labelled = with_text_columns(_labelled_rows(test))
    metrics = {**predictor.manifest.metrics, "test": score_predictor_on(predictor, labelled)}
    return write_manifest(
        Path(bundle_dir), predictor.manifest.model_copy(update={"metrics": metrics})
    )


def evaluate_candidate(
    bundle_dir: Path,
    test: pd.DataFrame,
    *,
    out_dir: Path | None = None,
    robustness: bool = True,
    robustness_cases: int = 200,
    min_slice_support: int = 1,
    seed: int = 7,
) -> EvaluationReport:
    """Evaluate a bundle on the test rows: metrics, slices, calibration, robustness, plots.

    Args:
        bundle_dir: The candidate's bundle.
        test: Held-out labelled rows (the same for every candidate).
        out_dir: When given, the report (``report.json``) and its PNG plots are written here.
        robustness: Run the behavioural checks (trending.modelling.robustness).
        robustness_cases: At most this many test texts go through each behavioural check.
        min_slice_support: Slices with fewer rows are left out of the report.
        seed: Seed of the robustness sample and perturbations.

    Returns:
        The report (also written to ``out_dir/report.json`` when ``out_dir`` is given).
    """
    from trending.modelling.robustness import run_robustness

    predictor = candidate_predictor(bundle_dir)
    manifest = predictor.manifest
    labelled = with_text_columns(_labelled_rows(test))
    vocabulary = GenreVocabulary(manifest.genres)
    texts = texts_of(labelled)
    behaviour = (
        run_robustness(
            texts,
            predictor.scores,
            genres=manifest.genres,
            thresholds=manifest.thresholds,
            max_cases=robustness_cases,
            seed=seed,
            # Failing examples name their title (the title id when the rows carry no title).
            titles=next((list(labelled[c]) for c in ("title", "title_id") if c in labelled), None),
        )
        if robustness
        else None
    )
    report = build_report(
        model_family=manifest.model_family,
        genres=manifest.genres,
        thresholds=manifest.thresholds,
        frame=labelled,
        y_true=vocabulary.encode(labelled["genres"]),
        scores=predictor.scores(texts),
        robustness=behaviour,
        min_slice_support=min_slice_support,
        bundle_dir=str(bundle_dir),
        data_snapshot_id=manifest.data_snapshot_id,
        code_version=manifest.code_version,
        train_seconds=manifest.metrics.get("train_seconds"),
    )
    if out_dir is not None:
        out_dir = Path(out_dir)
        report = report.model_copy(update={"plots": write_plots(report, out_dir)})
        report.write(out_dir / "report.json")
    return report
