"""XGBoost on TF-IDF: one multi-output booster over a word n-gram representation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from xgboost import XGBClassifier

DEFAULT_PARAMS: dict[str, Any] = {
    "max_features": 20_000,
    "ngram_max": 2,
    "n_estimators": 200,
    "max_depth": 6,
    "learning_rate": 0.1,
    "seed": 7,
}


class XGBoostGenreModel:
    """TF-IDF (sublinear, 1-2 grams) feeding a multi-label XGBoost classifier."""

    family = "xgboost"

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(DEFAULT_PARAMS)
        if unknown:
            raise ValueError(f"unknown xgboost params {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}")
        self.params = {**DEFAULT_PARAMS, **params}
        self.vectorizer: TfidfVectorizer | None = None
        self.booster: XGBClassifier | None = None

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Fit the vectorizer and the booster."""
        p = self.params
        self.vectorizer = TfidfVectorizer(
            max_features=p["max_features"],
            ngram_range=(1, p["ngram_max"]),
            sublinear_tf=True,
            min_df=2,
            strip_accents="unicode",
            dtype=np.float32,
        )
        matrix = self.vectorizer.fit_transform(texts)
        self.booster = XGBClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            learning_rate=p["learning_rate"],
            tree_method="hist",
            random_state=p["seed"],
            n_jobs=0,
        )
        self.booster.fit(matrix, np.asarray(labels))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per-genre probabilities."""
        if self.vectorizer is None or self.booster is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        scores = self.booster.predict_proba(self.vectorizer.transform(texts))
        return np.asarray(scores, dtype=np.float32).reshape(len(texts), -1)

    def save(self, directory: Path) -> dict[str, Any]:
        """Save vectorizer (joblib) and booster (XGBoost's own JSON format)."""
        if self.vectorizer is None or self.booster is None:
            raise RuntimeError("the model is not trained: nothing to save")
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.vectorizer, directory / "vectorizer.joblib")
        self.booster.save_model(directory / "booster.json")
        return {"type": "tfidf", "max_features": self.params["max_features"], "ngram_max": self.params["ngram_max"]}

    @classmethod
    def load(cls, directory: Path) -> XGBoostGenreModel:
        """Load a model written by ``save``."""
        model = cls()
        model.vectorizer = joblib.load(directory / "vectorizer.joblib")
        model.booster = XGBClassifier()
        model.booster.load_model(directory / "booster.json")
        return model
