"""A loaded bundle that turns titles into genres: the core of every serving adapter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trending.features.featurize import model_input_text
from trending.modelling.bundle import BundleManifest, verify_bundle
from trending.modelling.evaluation import apply_thresholds
from trending.modelling.families.base import GenreModel, load_model


@dataclass(frozen=True)
class GenrePrediction:
    """Genres above their thresholds, and every genre's score."""

    genres: list[str]
    scores: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"genres": self.genres, "scores": self.scores}


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
        """Predict for (plot, reviews) pairs."""
        texts = [model_input_text(plot, reviews) for plot, reviews in titles]
        scores = self.scores(texts)
        chosen = apply_thresholds(scores, self.manifest.thresholds)
        return [
            GenrePrediction(
                genres=[g for g, on in zip(self.genres, row_on, strict=True) if on],
                scores={g: round(float(s), 6) for g, s in zip(self.genres, row, strict=True)},
            )
            for row, row_on in zip(scores, chosen, strict=True)
        ]
