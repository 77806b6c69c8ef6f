"""The featurizer's own transform gives sklearn's numbers, for word and character n-grams."""

from __future__ import annotations

import pickle

import numpy as np
import scipy.sparse as sp

from trending.modelling.families.tfidf import TextTfidf

ODD_TEXTS = [
    "",
    "   ",
    "Zzz qqq never seen",
    "Café déjà vu, ÉLAN!",
    "a haunted house haunted house",
]


def test_transform_matches_the_sklearn_vectorizers(titles):
    texts = list(titles["plot"])
    featurizer = TextTfidf(max_features=3000, ngram_max=2, char_features=2000)
    featurizer.fit_transform(texts[:300])
    new = texts[300:] + ODD_TEXTS
    expected = sp.hstack([featurizer.word.transform(new), featurizer.char.transform(new)])
    got = featurizer.transform(new)
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.toarray(), expected.toarray(), atol=1e-6)
    assert featurizer.transform([]).shape == (0, expected.shape[1])


def test_a_pickled_featurizer_transforms_the_same(titles):
    featurizer = TextTfidf(max_features=2000)
    texts = list(titles["plot"][:200])
    featurizer.fit_transform(texts)
    before = featurizer.transform(texts[:20]).toarray()  # fills the analyzer cache
    restored = pickle.loads(pickle.dumps(featurizer))
    assert "_analyzers" not in restored.__dict__
    np.testing.assert_allclose(restored.transform(texts[:20]).toarray(), before, atol=1e-7)
