"""The XGBoost family's dense booster input means what the sparse stack means; saves round-trip."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trending.genres import GenreVocabulary
from trending.modelling.families.base import load_model
from trending.modelling.families.xgboost import XGBoostGenreModel


def test_dense_stack_scores_equal_the_sparse_stack(trained_bundle, titles):
    model = load_model(trained_bundle, "xgboost")
    texts = [*titles["plot"][:50], "", "zzz unseen words only"]
    matrix = model.featurizer.transform(texts)
    scores = model.scorer.predict_proba(matrix)
    # Reference: absent n-grams as sparse "missing" entries, the way XGBoost reads CSR input.
    sparse = sp.hstack([sp.csr_matrix(scores), matrix[:, model.columns]], format="csr")
    expected = model._blend(model.booster.predict_proba(sparse), scores)  # booster + logistic
    np.testing.assert_allclose(model.predict_proba(texts), expected, atol=1e-6)

    dense = model._stack(scores, matrix)
    assert dense.shape == (len(texts), scores.shape[1] + len(model.columns))
    present = matrix[:, model.columns].toarray() != 0
    assert np.array_equal(~np.isnan(dense[:, scores.shape[1] :]), present)


def test_a_saved_model_loads_back_with_the_same_scores(titles, tmp_path):
    texts, labels = list(titles["plot"][:240]), GenreVocabulary().encode(titles["genres"][:240])
    model = XGBoostGenreModel(n_estimators=15, max_features=1500, select_k=50, stack_folds=2)
    model.fit(texts, labels)
    model.save(tmp_path)
    assert not [p.name for p in tmp_path.iterdir() if p.suffix not in {".json", ".npz"}]

    loaded = XGBoostGenreModel.load(tmp_path)
    probe = [*list(titles["plot"][240:300]), "", "zzz unseen words only"]
    assert np.array_equal(loaded.columns, model.columns)
    assert loaded.trees_used == model.trees_used
    # The loaded model walks its trees with numba, the fitted one asks XGBoost: same scores.
    assert loaded._walker is not None and model._walker is None
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-6)
