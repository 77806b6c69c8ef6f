"""XGBoost on TF-IDF, stacked: out-of-fold linear scores plus chi2-selected n-grams feed the trees.

Why stacked: a booster on 20k raw TF-IDF columns is slow (hundreds of sparse columns scanned per
split, per genre) and weak (each tree sees a handful of words). Here a cheap one-vs-rest logistic
regression over word n-grams (character n-grams optional) turns the text into 19 genre scores;
its out-of-fold scores (so the trees never see scores of titles the scorer was fitted on), plus
the ``select_k`` n-grams with the highest chi2 association with any genre, are the booster's
input. The trees then learn genre co-occurrence ("animation" score raises "family") and
non-linear interactions on a few hundred columns. See
docs/adr/0006-model-families.md for the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_selection import chi2
from sklearn.model_selection import KFold
from xgboost import XGBClassifier

from trending.modelling.families.linear import check_params
from trending.modelling.families.storage import missing_model_file, read_arrays, write_arrays
from trending.modelling.families.tfidf import OneVsRestLogistic, TextTfidf
from trending.modelling.families.trees import TreeWalker
from trending.modelling.progress import Progress, xgboost_rounds_callback

DEFAULT_PARAMS: dict[str, Any] = {
    "max_features": 50_000,  # word 1..ngram_max grams
    "ngram_max": 2,
    # char_wb 2-5 grams; off by default: ~10x the non-zeros of word n-grams, so the stacked
    # logistic fits dominate training time on 2 cores.
    "char_features": 0,
    # c, select_k, max_depth, learning_rate, subsample, colsample_bytree: the best trial of the
    # recorded search (benchmarks/results/models.json "search": 6 seeded TPE trials on 2,500 dev
    # titles; on the 1,200 held-out titles it scores like the previous defaults, 0.575 vs 0.577
    # micro-F1, within noise, with no n-gram columns next to the scores).
    "c": 11.677357011579335,  # inverse regularisation of the stacked logistic scorers
    "stack_folds": 4,  # folds of the out-of-fold scores the trees train on
    "select_k": 0,  # chi2-selected n-gram columns next to the scores; 0 = scores only
    "n_estimators": 200,  # upper bound; early stopping picks the number actually used
    "max_depth": 4,
    "learning_rate": 0.1688616831415306,
    "subsample": 0.8676052963535654,
    "colsample_bytree": 0.7338764298724904,
    "early_stopping_rounds": 20,  # on an internal 10 % split of the training rows; 0 = off
    # 1 thread: XGBoost's OpenMP threads spin and slow down 10-25x when the cores are shared
    # (CI, a busy node); raise it on a dedicated node.
    "n_jobs": 1,
    "seed": 7,
    # Final score = w * booster + (1 - w) * stacked logistic score, w picked on the early
    # stopping rows by micro-F1 (ties: more booster); "auto" or a fixed weight in [0, 1].
    "blend": "auto",
}
BLEND_WEIGHTS = np.round(np.arange(0.0, 1.01, 0.1), 2)
_BLEND_ATTR = "trending_blend_weight"  # kept in the booster's own JSON (no extra bundle file)
COLUMNS_FILE = "columns.npz"  # the chi2-selected n-gram columns
BOOSTER_FILE = "booster.json"  # XGBoost's own JSON model format
# Rows held out of the booster for early stopping; their scores also tune the thresholds.
_EARLY_STOPPING_SHARE = 0.2
_MIN_ROWS_FOR_EARLY_STOPPING = 50


def chi2_top_columns(matrix: sp.spmatrix, labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` columns with the largest chi2 statistic summed over genres."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    total = np.zeros(matrix.shape[1])
    for g in range(labels.shape[1]):
        if labels[:, g].min() != labels[:, g].max():
            stats, _ = chi2(matrix, labels[:, g])
            total += np.nan_to_num(stats)
    return np.sort(np.argsort(-total, kind="stable")[: min(k, matrix.shape[1])])


class XGBoostGenreModel:
    """Stacked TF-IDF -> logistic scores (+ chi2 n-grams) -> multi-label XGBoost."""

    family = "xgboost"

    def __init__(self, **params: Any) -> None:
        self.params = check_params(self.family, params, DEFAULT_PARAMS)
        self.featurizer: TextTfidf | None = None
        self.scorer: OneVsRestLogistic | None = None
        self.columns: np.ndarray | None = None
        self.booster: XGBClassifier | None = None
        self._positions: np.ndarray | None = None  # n-gram column -> booster column (or -1)
        self._held_out: tuple[np.ndarray, np.ndarray] | None = None
        self._walker: TreeWalker | None = None  # the loaded booster's fast single-row path
        self.blend_weight = 1.0  # share of the booster in the final score

    def _stack(self, scores: np.ndarray, matrix: sp.spmatrix) -> np.ndarray:
        """Booster input: the genre scores, then the selected n-gram columns.

        Dense with NaN for absent n-grams, which XGBoost reads exactly as the missing entries of
        a sparse matrix; building it is ~15x cheaper than ``sp.hstack`` for a single title.
        """
        assert self.columns is not None
        matrix = sp.csr_matrix(matrix)
        if self._positions is None or len(self._positions) != matrix.shape[1]:
            self._positions = np.full(matrix.shape[1], -1, dtype=np.int64)
            self._positions[self.columns] = np.arange(len(self.columns))
        width = scores.shape[1]
        stacked = np.full((matrix.shape[0], width + len(self.columns)), np.nan, dtype=np.float32)
        stacked[:, :width] = scores
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        position = self._positions[matrix.indices]
        kept = position >= 0
        stacked[rows[kept], width + position[kept]] = matrix.data[kept]
        return stacked

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Fit featurizer, out-of-fold scorers, column selection and the booster."""
        p = self.params
        labels = np.asarray(labels)
        self._walker = None
        self.featurizer = TextTfidf(
            max_features=p["max_features"],
            ngram_max=p["ngram_max"],
            char_features=p["char_features"],
        )
        matrix = self.featurizer.fit_transform(list(texts))
        folds = min(p["stack_folds"], len(labels))
        if folds < 2:
            raise ValueError(f"stack_folds must be at least 2, got {p['stack_folds']}")
        out_of_fold = np.zeros(labels.shape, dtype=np.float32)
        fits = Progress("xgboost stacked scorers", folds + 1, unit="logistic fit")
        splits = KFold(folds, shuffle=True, random_state=p["seed"]).split(matrix)
        for fold, (fit_rows, held_rows) in enumerate(splits, start=1):
            scorer = OneVsRestLogistic(c=p["c"], seed=p["seed"]).fit(
                matrix[fit_rows], labels[fit_rows]
            )
            out_of_fold[held_rows] = scorer.predict_proba(matrix[held_rows])
            fits.advance()
            fits.report(f"out-of-fold fold {fold}/{folds}")
        self.scorer = OneVsRestLogistic(c=p["c"], seed=p["seed"]).fit(matrix, labels)
        fits.advance()
        fits.finish("scorers fitted")
        self.columns = chi2_top_columns(matrix, labels, p["select_k"])
        self._positions = None
        features = self._stack(out_of_fold, matrix)

        self.booster = XGBClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            learning_rate=p["learning_rate"],
            subsample=p["subsample"],
            colsample_bytree=p["colsample_bytree"],
            tree_method="hist",
            eval_metric="logloss",
            random_state=p["seed"],
            n_jobs=p["n_jobs"],
            # An upper bound on rounds: early stopping usually ends sooner than "time left".
            callbacks=[xgboost_rounds_callback(Progress("xgboost booster", p["n_estimators"]))],
        )
        rows = np.random.default_rng(p["seed"]).permutation(len(labels))
        n_stop = int(len(labels) * _EARLY_STOPPING_SHARE)
        if p["early_stopping_rounds"] and len(labels) >= _MIN_ROWS_FOR_EARLY_STOPPING:
            stop_rows, fit_rows = rows[:n_stop], rows[n_stop:]
            self.booster.set_params(early_stopping_rounds=p["early_stopping_rounds"])
            self.booster.fit(
                features[fit_rows],
                labels[fit_rows],
                eval_set=[(features[stop_rows], labels[stop_rows])],
                verbose=False,
            )
            held_scores = np.asarray(
                self.booster.predict_proba(features[stop_rows]), dtype=np.float32
            )
            self.blend_weight = self._choose_blend(
                held_scores, out_of_fold[stop_rows], labels[stop_rows]
            )
            blended = self._blend(held_scores, out_of_fold[stop_rows])
            self._held_out = (stop_rows, blended.astype(np.float32))
        else:
            self.booster.fit(features, labels)
            self.blend_weight = 1.0 if p["blend"] == "auto" else float(p["blend"])
            self._held_out = None
        self.booster.get_booster().set_attr(**{_BLEND_ATTR: str(self.blend_weight)})
        self.params = {**p, "blend_weight": self.blend_weight}

    def _choose_blend(self, booster: np.ndarray, logistic: np.ndarray, labels: np.ndarray) -> float:
        """The booster's weight with the best micro-F1 on the early-stopping rows (or the fixed one).

        Both inputs are honest there: the rows were not in the booster's fit and their logistic
        scores are out-of-fold. Thresholds are tuned per weight, as train_bundle tunes them.
        """
        from trending.modelling.evaluation import (
            apply_thresholds,
            classification_metrics,
            tune_thresholds,
        )

        wanted = self.params["blend"]
        if wanted != "auto":
            weight = float(wanted)
            if not 0.0 <= weight <= 1.0:
                raise ValueError(
                    f"xgboost params blend={wanted!r}: use 'auto' or a weight in [0, 1]"
                )
            return weight

        def micro_f1(weight: float) -> float:
            blended = weight * booster + (1 - weight) * logistic
            chosen = apply_thresholds(blended, tune_thresholds(labels, blended))
            return classification_metrics(labels, chosen)["micro_f1"]

        return float(max(BLEND_WEIGHTS[::-1], key=micro_f1))  # ties: the larger booster weight

    def _blend(self, booster: np.ndarray, logistic: np.ndarray) -> np.ndarray:
        if self.blend_weight == 1.0:
            return booster
        return self.blend_weight * booster + (1 - self.blend_weight) * logistic

    def held_out_scores(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Rows of the last ``fit`` kept out of the booster (early stopping) and their scores.

        Their stacked logistic scores are out-of-fold too, so these are honest validation scores.
        """
        return self._held_out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per-genre probabilities."""
        if self.featurizer is None or self.scorer is None or self.booster is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        matrix = self.featurizer.transform(list(texts))
        logistic = self.scorer.predict_proba(matrix)
        features = self._stack(logistic, matrix)
        if self._walker is not None:
            scores = self._walker.predict_proba(features)
        else:
            scores = self.booster.predict_proba(features)
        scores = np.asarray(scores, dtype=np.float32).reshape(len(texts), -1)
        return self._blend(scores, logistic).astype(np.float32)

    @property
    def trees_used(self) -> int | None:
        """Boosting rounds kept by early stopping (None when it was off)."""
        if self.booster is None:
            return None
        best = getattr(self.booster, "best_iteration", None)
        return None if best is None else int(best) + 1

    def save(self, directory: Path) -> dict[str, Any]:
        """Save featurizer, scorer and columns (JSON plus arrays) and the booster (XGBoost JSON)."""
        if self.featurizer is None or self.scorer is None or self.booster is None:
            raise RuntimeError("the model is not trained: nothing to save")
        assert self.columns is not None
        directory.mkdir(parents=True, exist_ok=True)
        self.featurizer.save(directory)
        self.scorer.save(directory)
        write_arrays(directory / COLUMNS_FILE, columns=self.columns.astype(np.int64))
        self.booster.save_model(directory / BOOSTER_FILE)
        return {
            **self.featurizer.config(),
            "stacked_scores": True,
            "select_k": int(len(self.columns) if self.columns is not None else 0),
            "trees_used": self.trees_used,
            "blend_weight": self.blend_weight,
        }

    @classmethod
    def load(cls, directory: Path) -> XGBoostGenreModel:
        """Load a model written by ``save`` (no pickle is read)."""
        model = cls()
        model.featurizer = TextTfidf.load(directory)
        model.scorer = OneVsRestLogistic.load(directory)
        model.columns = read_arrays(directory / COLUMNS_FILE, ("columns",))["columns"]
        if model.columns.dtype.kind not in "iu":
            raise ValueError(
                f"{directory / COLUMNS_FILE} holds {model.columns.dtype}, not integers"
            )
        if not (directory / BOOSTER_FILE).is_file():
            raise missing_model_file(directory / BOOSTER_FILE)
        # One thread: serving predicts a few rows at a time, where a thread pool costs more
        # than it saves (measured: benchmarks/results/serving.json).
        model.booster = XGBClassifier(n_jobs=1)
        model.booster.load_model(directory / BOOSTER_FILE)
        # Bundles from before the blend have no weight: pure booster, as they were trained.
        model.blend_weight = float(model.booster.get_booster().attr(_BLEND_ATTR) or 1.0)
        rounds = model.trees_used or model.booster.get_booster().num_boosted_rounds()
        model._walker = TreeWalker.compile(model.booster.get_booster(), rounds)
        return model
