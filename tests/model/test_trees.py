"""The numba tree walker scores exactly as XGBoost does, and steps aside where it cannot."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from trending.modelling.families.base import load_model
from trending.modelling.families.trees import TreeWalker


def _multilabel_data(rows: int = 400, features: int = 12, targets: int = 4, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    labels = np.stack(
        [
            (x[:, t] + x[:, t + 1] * x[:, 0] + rng.normal(0, 0.5, rows) > 0.3)
            for t in range(targets)
        ],
        axis=1,
    ).astype(int)
    # Missing values that carry signal, so trees learn both default directions.
    x[rng.random(x.shape) < 0.2] = np.nan
    return x, labels


@pytest.fixture(scope="module")
def early_stopped():
    x, labels = _multilabel_data()
    model = XGBClassifier(
        n_estimators=60, max_depth=4, learning_rate=0.3, early_stopping_rounds=5, n_jobs=1
    )
    model.fit(x[:300], labels[:300], eval_set=[(x[300:], labels[300:])], verbose=False)
    return model, x


def test_walker_scores_equal_xgboost_including_missing_and_split_values(early_stopped):
    model, x = early_stopped
    rounds = model.best_iteration + 1
    assert rounds < model.get_booster().num_boosted_rounds()  # early stopping cut trees
    walker = TreeWalker.compile(model.get_booster(), rounds)
    assert walker is not None
    assert walker.default_left.any() and not walker.default_left.all()

    # Rows whose values sit exactly on split values, where `<` vs `<=` would disagree.
    on_splits = np.tile(np.nanmedian(x, axis=0), (len(walker.threshold), 1)).astype(np.float32)
    on_splits[np.arange(len(walker.threshold)), walker.feature] = walker.threshold
    for rows in (x, x[:1], on_splits, np.full((2, x.shape[1]), np.nan, np.float32)):
        np.testing.assert_allclose(walker.predict_proba(rows), model.predict_proba(rows), atol=1e-6)


def test_rows_of_the_wrong_width_are_refused(early_stopped):
    model, x = early_stopped
    walker = TreeWalker.compile(model.get_booster(), model.best_iteration + 1)
    with pytest.raises(ValueError, match=f"rows of {x.shape[1]} features"):
        walker.predict_proba(x[:, :-1])
    with pytest.raises(ValueError, match=f"rows of {x.shape[1]} features"):
        walker.predict_proba(x[0])


def test_walker_steps_aside_when_its_scores_would_differ(early_stopped, monkeypatch, caplog):
    model, _ = early_stopped
    real = TreeWalker.predict_proba
    monkeypatch.setattr(TreeWalker, "predict_proba", lambda self, rows: real(self, rows) + 1e-3)
    with caplog.at_level(logging.WARNING):
        assert TreeWalker.compile(model.get_booster(), model.best_iteration + 1) is None
    assert "differ from XGBoost's" in caplog.text


def test_walker_refuses_models_it_does_not_understand(caplog):
    x, labels = _multilabel_data()
    softmax = XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(
        x, labels[:, 0] + labels[:, 1]
    )
    frame = pd.DataFrame({"kind": pd.Categorical(np.where(x[:, 0] > 0, "a", "b")), "v": x[:, 1]})
    categorical = XGBClassifier(
        n_estimators=5, max_depth=2, n_jobs=1, enable_categorical=True, tree_method="hist"
    ).fit(frame, labels[:, 0])
    with caplog.at_level(logging.WARNING):
        assert TreeWalker.compile(softmax.get_booster(), 5) is None
        assert TreeWalker.compile(categorical.get_booster(), 5) is None
    assert "objective multi:softprob" in caplog.text
    assert "categorical splits" in caplog.text


def test_loaded_xgboost_family_serves_through_the_walker(trained_bundle, titles):
    model = load_model(trained_bundle, "xgboost")
    assert model._walker is not None
    texts = list(titles["plot"][:20])
    matrix = model.featurizer.transform(texts)
    logistic = model.scorer.predict_proba(matrix)
    features = model._stack(logistic, matrix)
    expected = model._blend(model.booster.predict_proba(features), logistic)  # booster + logistic
    np.testing.assert_allclose(model.predict_proba(texts), expected, atol=1e-6)


def test_genres_no_title_has_or_every_title_has_score_as_in_xgboost(recwarn):
    x, labels = _multilabel_data()
    labels[:, 1], labels[:, 2] = 0, 1  # base scores 0 and 1: XGBoost keeps them off the edges
    model = XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(x, labels)
    walker = TreeWalker.compile(model.get_booster(), 5)
    assert walker is not None
    np.testing.assert_allclose(walker.predict_proba(x), model.predict_proba(x), atol=1e-6)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
