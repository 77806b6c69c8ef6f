"""The text representation drift is measured on, and the plain features compared for skew.

TF-IDF followed by a truncated SVD, stored as plain arrays (``drift/text_encoder.npz``, no pickle);
skew features are plot length and review count per title.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trending.monitoring.drift.errors import DriftError

SKEW_FEATURES: tuple[str, ...] = ("plot_chars", "review_count")

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # noqa: S105 - a regex, not a secret


@dataclass(frozen=True)
class TextEncoder:
    """TF-IDF followed by a truncated SVD, stored as plain arrays (no pickle)."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    components: np.ndarray  # (n_components, n_terms)

    @classmethod
    def fit(cls, texts: Sequence[str], *, n_components: int = 32, seed: int = 7) -> TextEncoder:
        """Fit TF-IDF (unigrams, min_df=2, 5,000 terms) and an SVD with ``n_components``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            token_pattern=_TOKEN_PATTERN, lowercase=True, min_df=2, max_features=5000
        )
        try:
            matrix = vectorizer.fit_transform(list(texts))
        except ValueError as exc:
            raise DriftError(f"cannot fit the text encoder on the reference texts: {exc}") from None
        k = min(n_components, matrix.shape[1] - 1, matrix.shape[0] - 1)
        if k < 1:
            raise DriftError(
                f"the reference texts have {matrix.shape[1]} terms seen twice or more: give more "
                "(and more varied) reference texts"
            )
        svd = TruncatedSVD(n_components=k, random_state=seed).fit(matrix)
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        return cls(vocabulary, vectorizer.idf_.astype(np.float64), svd.components_)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """The reduced representation, float32, one row per text."""
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        counts = CountVectorizer(
            token_pattern=_TOKEN_PATTERN, lowercase=True, vocabulary=self.vocabulary
        ).transform(list(texts))
        tfidf = normalize(counts.multiply(self.idf).tocsr(), norm="l2")
        return np.asarray(tfidf @ self.components.T, dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write the encoder as one ``.npz`` (terms ordered by column)."""
        terms = np.array(sorted(self.vocabulary, key=self.vocabulary.__getitem__))
        np.savez(path, terms=terms, idf=self.idf, components=self.components)

    @classmethod
    def load(cls, path: Path) -> TextEncoder:
        """Read an encoder written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            terms = [str(t) for t in data["terms"]]
            return cls({t: i for i, t in enumerate(terms)}, data["idf"], data["components"])


def skew_feature_values(titles: Iterable[tuple[str, Sequence[str]]]) -> dict[str, np.ndarray]:
    """Plain feature values compared for training/serving skew, from (plot, reviews) pairs."""
    rows = [
        (len(plot.strip()), sum(1 for r in reviews if r and r.strip())) for plot, reviews in titles
    ]
    values = np.array(rows, dtype=np.float64).reshape(-1, 2)
    return {name: values[:, i] for i, name in enumerate(SKEW_FEATURES)}
