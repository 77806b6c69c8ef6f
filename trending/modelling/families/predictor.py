"""A loaded bundle that turns titles into genres: the core of every serving adapter.

Scores become genres in one place, ``trending.modelling.bundle.inference.prediction_rows`` after
``apply_thresholds``: the path the served model answers with, so what tests check here is what
clients get.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trending.features.featurize import model_input_text
from trending.modelling.bundle import BundleManifest, verify_bundle
from trending.modelling.bundle.inference import parse_instances, prediction_rows
from trending.modelling.evaluation import apply_thresholds
from trending.modelling.families.base import GenreModel, load_model


@dataclass(frozen=True)
class GenrePrediction:
    """Genres above their thresholds, and every genre's score (a served V1 prediction)."""

    genres: list[str]
    scores: dict[str, float]


class GenrePredictor:
    """A verified bundle's model plus its thresholds and genre vocabulary."""

    def __init__(self, manifest: BundleManifest, model: GenreModel) -> None:
        self.manifest = manifest
        self.model = model

    @classmethod
    def from_bundle(cls, bundle_dir: Path) -> GenrePredictor:
        """Verify the bundle's checksums, then load its model."""
        manifest = verify_bundle(bundle_dir)
        return cls(manifest, load_model(bundle_dir, manifest.model_family))

    @property
    def genres(self) -> list[str]:
        """The genre vocabulary, in score column order."""
        return self.manifest.genres

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Raw per-genre scores for model input texts."""
        return self.model.predict_proba(list(texts))

    def predict_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> list[GenrePrediction]:
        """Predict for (plot, reviews) pairs, validated and answered as the served model does.

        Raises:
            InvalidRequestError: A title the served model would refuse (e.g. an empty plot).
        """
        inputs = parse_instances(
            [{"plot": plot, "reviews": list(reviews)} for plot, reviews in titles],
            max_instances=max(len(titles), 1),
        )
        scores = self.scores([model_input_text(t.plot, t.reviews) for t in inputs])
        chosen = apply_thresholds(scores, self.manifest.thresholds)
        rows = prediction_rows(inputs, scores, chosen, self.genres)
        return [GenrePrediction(genres=row["genres"], scores=row["scores"]) for row in rows]
