"""Train a model family on labelled features and write a model bundle."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from trending.bundle import BundleManifest, write_manifest
from trending.evaluation import apply_thresholds, classification_metrics, tune_thresholds
from trending.features import texts_of
from trending.genres import GenreVocabulary
from trending.models.base import model_family

MIN_TRAINING_ROWS = 20


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
    labelled = frame[frame["genres"].map(len) > 0].reset_index(drop=True)
    if len(labelled) < MIN_TRAINING_ROWS:
        raise ValueError(
            f"only {len(labelled)} labelled titles: training needs at least {MIN_TRAINING_ROWS}"
        )
    train, held_out = train_test_split(labelled, test_size=test_size, random_state=seed)
    return train.reset_index(drop=True), held_out.reset_index(drop=True)


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
    """Fit ``family`` on ``train``, tune thresholds on a validation split, write the bundle.

    The model is fitted on 80 % of ``train``; per-genre thresholds are tuned on the other 20 %.
    The bundle's metrics hold the validation scores; test metrics are added by ``evaluate_bundle``.
    """
    vocabulary = vocabulary or GenreVocabulary()
    fit_part, valid_part = split_labelled(train, test_size=0.2, seed=seed)
    model = model_family(family)(**(params or {}))
    model.fit(texts_of(fit_part), vocabulary.encode(fit_part["genres"]))
    y_valid = vocabulary.encode(valid_part["genres"])
    valid_scores = model.predict_proba(texts_of(valid_part))
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
            metrics={"validation": valid_metrics},
            data_snapshot_id=data_snapshot_id,
            code_version=code_version(),
            params={**getattr(model, "params", {}), "seed": seed, "train_rows": len(fit_part)},
        ),
    )


def score_predictor_on(predictor: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Metrics of a loaded ``GenrePredictor`` on labelled rows."""
    vocabulary = GenreVocabulary(predictor.genres)
    y_true = vocabulary.encode(frame["genres"])
    scores = predictor.scores(texts_of(frame))
    return classification_metrics(y_true, apply_thresholds(scores, predictor.manifest.thresholds))


def evaluate_bundle(bundle_dir: Path, test: pd.DataFrame) -> BundleManifest:
    """Score a bundle on held-out rows and record the test metrics in its manifest."""
    from trending.models.predictor import GenrePredictor

    predictor = GenrePredictor.from_bundle(bundle_dir)
    labelled = test[test["genres"].map(len) > 0]
    if labelled.empty:
        raise ValueError("the test split has no labelled rows: nothing to evaluate on")
    metrics = {**predictor.manifest.metrics, "test": score_predictor_on(predictor, labelled)}
    return write_manifest(Path(bundle_dir), predictor.manifest.model_copy(update={"metrics": metrics}))



