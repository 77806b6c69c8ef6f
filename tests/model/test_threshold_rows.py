"""Which rows the thresholds are tuned on: never rows the scoring model was fitted on."""

from __future__ import annotations

import numpy as np
from small_params import TEST_XGBOOST

from trending.genres import GenreVocabulary
from trending.modelling.families.base import model_family
from trending.modelling.training import cross_fitted_scores, train_bundle


class Memorizer:
    """Scores 1.0 for the genres of texts it was fitted on and 0.5 for any text it never saw."""

    def fit(self, texts, labels):
        self.seen = {t: row for t, row in zip(texts, labels, strict=True)}

    def predict_proba(self, texts):
        return np.array([self.seen.get(t, np.full(3, 0.5)) for t in texts], dtype=np.float32)


def test_cross_fitted_scores_come_from_models_that_never_saw_the_row():
    texts = [f"title {i}" for i in range(20)]
    labels = np.eye(3, dtype=np.int8)[np.arange(20) % 3]
    scores = cross_fitted_scores(Memorizer, texts, labels, folds=4, seed=1)
    assert scores.shape == labels.shape
    np.testing.assert_array_equal(scores, 0.5)  # a leak would show as a memorized 0/1


def test_baselines_fit_every_row_and_tune_on_out_of_fold_scores(tmp_path, titles):
    manifest = train_bundle(titles, tmp_path / "prior", family="prior", seed=3)
    labelled = titles[titles["genres"].map(len) > 0]
    assert manifest.params["train_rows"] == manifest.params["threshold_rows"] == len(labelled)
    assert manifest.params["thresholds_from"] == "out-of-fold scores"
    prior = model_family("prior").load(tmp_path / "prior" / "model")
    expected_rates = GenreVocabulary().encode(labelled["genres"]).mean(axis=0)
    np.testing.assert_allclose(prior.rates, expected_rates, rtol=1e-6)


def test_xgboost_tunes_on_the_rows_its_booster_held_out(tmp_path, titles):
    manifest = train_bundle(titles, tmp_path / "xgb", params=TEST_XGBOOST, seed=3)
    assert manifest.params["thresholds_from"] == "validation split"
    assert manifest.params["threshold_rows"] == int(manifest.params["train_rows"] * 0.2)
