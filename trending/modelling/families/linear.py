"""The linear baseline: word TF-IDF and one logistic regression per genre."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trending.modelling.families.tfidf import OneVsRestLogistic, TextTfidf

DEFAULT_PARAMS: dict[str, Any] = {
    "max_features": 50_000,
    "ngram_max": 2,
    "c": 1.0,  # measured on one dev fold: C=1 0.569/0.493, C=4 0.560/0.470 micro/macro F1
    "seed": 7,
}


def check_params(family: str, params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Merge ``params`` over ``defaults``, refusing names the family does not know."""
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {family} params {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **params}


class LinearGenreModel:
    """TF-IDF (word 1-2 grams) + one-vs-rest logistic regression: the baseline to beat."""

    family = "linear"

    def __init__(self, **params: Any) -> None:
        self.params = check_params(self.family, params, DEFAULT_PARAMS)
        self.featurizer: TextTfidf | None = None
        self.scorer: OneVsRestLogistic | None = None

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Fit the vectorizer and one logistic regression per genre."""
        p = self.params
        self.featurizer = TextTfidf(max_features=p["max_features"], ngram_max=p["ngram_max"])
        matrix = self.featurizer.fit_transform(list(texts))
        self.scorer = OneVsRestLogistic(c=p["c"], seed=p["seed"]).fit(matrix, labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per-genre probabilities."""
        if self.featurizer is None or self.scorer is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        return self.scorer.predict_proba(self.featurizer.transform(list(texts)))

    def save(self, directory: Path) -> dict[str, Any]:
        """Save featurizer and scorer as JSON plus arrays (``tfidf.*``, ``logistic.*``)."""
        if self.featurizer is None or self.scorer is None:
            raise RuntimeError("the model is not trained: nothing to save")
        directory.mkdir(parents=True, exist_ok=True)
        self.featurizer.save(directory)
        self.scorer.save(directory)
        return self.featurizer.config()

    @classmethod
    def load(cls, directory: Path) -> LinearGenreModel:
        """Load a model written by ``save`` (no pickle is read)."""
        model = cls()
        model.featurizer = TextTfidf.load(directory)
        model.scorer = OneVsRestLogistic.load(directory)
        return model
