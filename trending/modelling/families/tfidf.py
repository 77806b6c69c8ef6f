"""TF-IDF featurizers and one-vs-rest logistic scorers shared by the linear and XGBoost families.

Nothing here imports torch: serving a TF-IDF family stays light. Both save as JSON plus plain
arrays (``tfidf.json``/``tfidf.npz``, ``logistic.json``/``logistic.npz``), never as pickles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from trending.modelling.families.storage import read_arrays, read_json, write_arrays, write_json

TFIDF_FILES = ("tfidf.json", "tfidf.npz")
LOGISTIC_FILES = ("logistic.json", "logistic.npz")
# TfidfVectorizer parameters a saved featurizer keeps (what transform depends on, and what fit
# used, for the record). Callables (tokenizer, preprocessor, a callable analyzer) cannot be saved.
_VECTORIZER_PARAMS = (
    "input", "encoding", "decode_error", "strip_accents", "lowercase", "stop_words",
    "token_pattern", "ngram_range", "analyzer", "max_df", "min_df", "max_features", "binary",
    "norm", "use_idf", "smooth_idf", "sublinear_tf",
)  # fmt: skip


def _vectorizer_state(vectorizer: TfidfVectorizer) -> tuple[dict[str, Any], list[str], np.ndarray]:
    """(parameters, terms in column order, idf) of a fitted vectorizer: all JSON or arrays."""
    params = vectorizer.get_params()
    for name in ("tokenizer", "preprocessor", "vocabulary"):
        if params[name] is not None:
            raise ValueError(f"a TfidfVectorizer with a custom {name} cannot be saved safely")
    if callable(params["analyzer"]):
        raise ValueError("a TfidfVectorizer with a callable analyzer cannot be saved safely")
    kept = {name: params[name] for name in _VECTORIZER_PARAMS}
    kept["ngram_range"] = list(kept["ngram_range"])
    kept["dtype"] = np.dtype(params["dtype"]).name
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    return kept, terms, np.asarray(vectorizer.idf_)


def _restore_vectorizer(params: dict[str, Any], terms: list[str], idf: np.ndarray) -> Any:
    """A fitted TfidfVectorizer from ``_vectorizer_state``'s output (no fitting, no pickle)."""
    unknown = set(params) - {*_VECTORIZER_PARAMS, "dtype"}
    if unknown:
        raise ValueError(f"unknown TfidfVectorizer parameters {sorted(unknown)} in a saved model")
    if params.get("analyzer") not in ("word", "char", "char_wb"):
        raise ValueError(f"analyzer {params.get('analyzer')!r}: expected word, char or char_wb")
    if len(terms) != len(idf) or len(set(terms)) != len(terms):
        raise ValueError(
            f"a saved TF-IDF vocabulary has {len(terms)} terms ({len(set(terms))} distinct) for "
            f"{len(idf)} idf weights: the bundle is damaged"
        )
    vectorizer = TfidfVectorizer(
        **{
            **params,
            "ngram_range": tuple(params["ngram_range"]),
            "dtype": np.dtype(params["dtype"]).type,
        }
    )
    vectorizer.vocabulary_ = {term: column for column, term in enumerate(terms)}
    if idf.dtype.kind != "f":
        raise ValueError(f"a saved idf has dtype {idf.dtype}, not floats: the bundle is damaged")
    vectorizer.idf_ = idf  # the dtype it was fitted with
    return vectorizer


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

    def save(self, directory: Path) -> None:
        """Write ``tfidf.json`` (parameters, vocabularies) and ``tfidf.npz`` (idf weights)."""
        parts: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for name, vectorizer in (("word", self.word), ("char", self.char)):
            if vectorizer is None:
                continue
            params, terms, idf = _vectorizer_state(vectorizer)
            parts[name] = {"params": params, "terms": terms}
            arrays[f"{name}_idf"] = idf
        write_json(directory / TFIDF_FILES[0], {"vectorizers": parts})
        write_arrays(directory / TFIDF_FILES[1], **arrays)

    @classmethod
    def load(cls, directory: Path) -> TextTfidf:
        """Read a featurizer written by ``save``."""
        parts = read_json(directory / TFIDF_FILES[0])["vectorizers"]
        if "word" not in parts or set(parts) - {"word", "char"}:
            raise ValueError(
                f"{directory / TFIDF_FILES[0]} names vectorizers {sorted(parts)}; expected word "
                "and optionally char: the bundle is damaged"
            )
        arrays = read_arrays(directory / TFIDF_FILES[1], tuple(f"{n}_idf" for n in parts))
        featurizer = cls.__new__(cls)
        featurizer.word = _restore_vectorizer(**parts["word"], idf=arrays["word_idf"])
        featurizer.char = (
            _restore_vectorizer(**parts["char"], idf=arrays["char_idf"])
            if "char" in parts
            else None
        )
        return featurizer

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
        self._stack_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

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
        if self._stack_cache is None:
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

    def save(self, directory: Path) -> None:
        """Write ``logistic.json`` (settings) and ``logistic.npz`` (the stacked arrays)."""
        if not self.models and self._stack_cache is None:
            raise RuntimeError("the logistic scorer is not trained: nothing to save")
        weights, bias, constant = self.stacked()
        write_json(
            directory / LOGISTIC_FILES[0],
            {"c": self.c, "balanced": self.balanced, "seed": self.seed, "genres": len(bias)},
        )
        write_arrays(directory / LOGISTIC_FILES[1], weights=weights, bias=bias, constant=constant)

    @classmethod
    def load(cls, directory: Path) -> OneVsRestLogistic:
        """Read a scorer written by ``save``: it scores exactly as the saved one did.

        The per-genre sklearn models are not restored, only the arrays scoring uses.
        """
        settings = read_json(directory / LOGISTIC_FILES[0])
        arrays = read_arrays(directory / LOGISTIC_FILES[1], ("weights", "bias", "constant"))
        weights, bias, constant = (
            arrays[k].astype(np.float32) for k in ("weights", "bias", "constant")
        )
        genres = int(settings["genres"])
        if (
            weights.ndim != 2
            or weights.shape[1] != genres
            or {bias.shape, constant.shape} != {(genres,)}
        ):
            raise ValueError(
                f"{directory / LOGISTIC_FILES[1]}: weights {weights.shape}, bias {bias.shape}, "
                f"constant {constant.shape} do not fit {genres} genres: the bundle is damaged"
            )
        scorer = cls(
            c=float(settings["c"]), balanced=bool(settings["balanced"]), seed=int(settings["seed"])
        )
        scorer._stack_cache = (weights, bias, constant)
        return scorer

    def predict_proba(self, matrix: sp.spmatrix) -> np.ndarray:
        """Per-genre probabilities, shape (rows, genres): sigmoid of one product, as sklearn's."""
        if not self.models and self._stack_cache is None:
            raise RuntimeError("the logistic scorer is not trained: call fit() first")
        weights, bias, constant = self.stacked()
        scores = expit(np.asarray(matrix @ weights, dtype=np.float32) + bias)
        fixed = ~np.isnan(constant)
        scores[:, fixed] = constant[fixed]
        return scores.astype(np.float32)
