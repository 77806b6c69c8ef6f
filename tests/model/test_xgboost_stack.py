"""The XGBoost family's dense booster input means exactly what the sparse stack means."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trending.modelling.families.base import load_model


def test_dense_stack_scores_equal_the_sparse_stack(trained_bundle, titles):
    model = load_model(trained_bundle, "xgboost")
    texts = [*titles["plot"][:50], "", "zzz unseen words only"]
    matrix = model.featurizer.transform(texts)
    scores = model.scorer.predict_proba(matrix)
    # Reference: absent n-grams as sparse "missing" entries, the way XGBoost reads CSR input.
    sparse = sp.hstack([sp.csr_matrix(scores), matrix[:, model.columns]], format="csr")
    expected = model.booster.predict_proba(sparse)
    np.testing.assert_allclose(model.predict_proba(texts), expected, atol=1e-6)

    dense = model._stack(scores, matrix)
    assert dense.shape == (len(texts), scores.shape[1] + len(model.columns))
    present = matrix[:, model.columns].toarray() != 0
    assert np.array_equal(~np.isnan(dense[:, scores.shape[1] :]), present)
