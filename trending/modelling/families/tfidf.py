"""TF-IDF featurizers and one-vs-rest logistic scorers shared by the linear and XGBoost families.

Nothing here imports torch: serving a TF-IDF family stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


class TextTfidf:
    """Word n-gram TF-IDF, optionally stacked with character n-gram TF-IDF (sublinear tf)."""

    def __init__(self, *, max_features: int, ngram_max: int = 2, char_features: int = 0) -> None:
        self.word = TfidfVectorizer(
            max_features=max_features,
            ngram_range=(1, ngram_max),
            sublinear_tf=True,
            min_df=2,
            strip_accents="unicode",
            dtype=np.float32,
        )
        self.char = (
            TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=(2, 5),
                max_features=char_features,
                sublinear_tf=True,
                min_df=3,
                strip_accents="unicode",
                dtype=np.float32,
            )
            if char_features
            else None
        )

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Fit the vocabularies and return the matrix."""
        parts = [self.word.fit_transform(texts)]
        if self.char is not None:
            parts.append(self.char.fit_transform(texts))
        return sp.hstack(parts, format="csr", dtype=np.float32)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The matrix of new texts (the same numbers as the vectorizers' own ``transform``)."""
        parts = [self._transform(self.word, texts)]
        if self.char is not None:
            parts.append(self._transform(self.char, texts))
        return parts[0] if len(parts) == 1 else sp.hstack(parts, format="csr", dtype=np.float32)

    def _transform(self, vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
        """Sublinear-tf x idf, L2-normalised, computed directly from the fitted vocabulary.

        sklearn's ``transform`` spends ~1 ms per call on validation and conversions; serving
        scores one title per request, where this path is ~8x faster.
        """
        analyzers = self.__dict__.setdefault("_analyzers", {})
        if id(vectorizer) not in analyzers:
            analyzers[id(vectorizer)] = vectorizer.build_analyzer()
        analyze, vocabulary = analyzers[id(vectorizer)], vectorizer.vocabulary_
        idf = vectorizer.idf_.astype(np.float32)
        indptr, indices, values = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for token in analyze(text):
                column = vocabulary.get(token)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            columns = np.fromiter(sorted(counts), dtype=np.int32, count=len(counts))
            tf = np.fromiter((counts[c] for c in columns), dtype=np.float32, count=len(counts))
            weights = (1.0 + np.log(tf)) * idf[columns]
            norm = float(np.sqrt(np.dot(weights, weights)))
            values.append(weights / norm if norm > 0 else weights)
            indices.append(columns)
            indptr.append(indptr[-1] + len(columns))
        return sp.csr_matrix(
            (
                np.concatenate(values) if values else np.zeros(0, np.float32),
                np.concatenate(indices) if indices else np.zeros(0, np.int32),
                np.asarray(indptr),
            ),
            shape=(len(texts), len(vocabulary)),
            dtype=np.float32,
        )

    def __getstate__(self) -> dict[str, Any]:
        # The analyzer cache is rebuilt on first use; it is not part of a saved model.
        return {k: v for k, v in self.__dict__.items() if k != "_analyzers"}

    def config(self) -> dict[str, Any]:
        """Featurizer description for the bundle manifest."""
        return {
            "type": "tfidf",
            "word_ngram_max": self.word.ngram_range[1],
            "max_features": self.word.max_features,
            "char_features": self.char.max_features if self.char is not None else 0,
        }


class OneVsRestLogistic:
    """One binary logistic regression per genre (liblinear, balanced class weights).

    A genre with a single class in the training labels gets a constant score (its base rate)
    instead of a fitted model, so tiny or skewed training sets still train.
    """

    def __init__(self, *, c: float = 4.0, balanced: bool = True, seed: int = 7) -> None:
        self.c = c
        self.balanced = balanced
        self.seed = seed
        self.models: list[LogisticRegression | float] = []

    def fit(self, matrix: sp.spmatrix, labels: np.ndarray) -> OneVsRestLogistic:
        """Fit one model per label column."""
        labels = np.asarray(labels)
        self.models = []
        self._stack_cache = None
        for g in range(labels.shape[1]):
            column = labels[:, g]
            if column.min() == column.max():
                self.models.append(float(column.mean()))
                continue
            model = LogisticRegression(
                C=self.c,
                solver="liblinear",
                class_weight="balanced" if self.balanced else None,
                random_state=self.seed,
            )
            self.models.append(model.fit(matrix, column))
        return self

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weights features x genres, biases, constant scores; NaN where a model was fitted).

        All genres as one matrix, so scoring is one sparse product (built once).
        """
        if getattr(self, "_stack_cache", None) is None:
            width = next((m.coef_.shape[1] for m in self.models if not isinstance(m, float)), 0)
            weights = np.zeros((width, len(self.models)), dtype=np.float32)
            bias = np.zeros(len(self.models), dtype=np.float32)
            constant = np.full(len(self.models), np.nan, dtype=np.float32)
            for g, m in enumerate(self.models):
                if isinstance(m, float):
                    constant[g] = m
                else:
                    weights[:, g], bias[g] = m.coef_[0], m.intercept_[0]
            self._stack_cache = (weights, bias, constant)
        return self._stack_cache

    def predict_proba(self, matrix: sp.spmatrix) -> np.ndarray:
        """Per-genre probabilities, shape (rows, genres): sigmoid of one product, as sklearn's."""
        if not self.models:
            raise RuntimeError("the logistic scorer is not trained: call fit() first")
        weights, bias, constant = self.stacked()
        scores = expit(np.asarray(matrix @ weights, dtype=np.float32) + bias)
        fixed = ~np.isnan(constant)
        scores[:, fixed] = constant[fixed]
        return scores.astype(np.float32)
