"""The featurizer's own transform gives sklearn's numbers; saved featurizers and scorers score the same."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from trending.genres import GenreVocabulary
from trending.modelling.families.linear import LinearGenreModel
from trending.modelling.families.tfidf import (
    LOGISTIC_FILES,
    TFIDF_FILES,
    OneVsRestLogistic,
    TextTfidf,
)

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


def test_saved_featurizer_and_scorer_load_back_scoring_the_same(titles, tmp_path):
    texts = list(titles["plot"])
    labels = GenreVocabulary().encode(titles["genres"])
    labels[:, 0] = 0  # a genre nobody has: saved as a constant score, not a fitted model
    featurizer = TextTfidf(max_features=3000, ngram_max=2, char_features=1500)
    scorer = OneVsRestLogistic(c=2.0, seed=3).fit(
        featurizer.fit_transform(texts[:300]), labels[:300]
    )
    featurizer.save(tmp_path)
    scorer.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*TFIDF_FILES, *LOGISTIC_FILES])

    restored, restored_scorer = TextTfidf.load(tmp_path), OneVsRestLogistic.load(tmp_path)
    new = texts[300:] + ODD_TEXTS
    matrix = featurizer.transform(new)
    assert np.array_equal(restored.transform(new).toarray(), matrix.toarray())
    # sklearn's own transform of the restored vectorizers gives its numbers too.
    np.testing.assert_allclose(
        restored.word.transform(new).toarray(), featurizer.word.transform(new).toarray()
    )
    assert restored.config() == featurizer.config()
    assert np.array_equal(restored_scorer.predict_proba(matrix), scorer.predict_proba(matrix))
    assert restored_scorer.predict_proba(matrix)[:, 0].max() == 0.0
    assert (restored_scorer.c, restored_scorer.seed) == (2.0, 3)


def test_saved_models_are_json_and_plain_arrays(titles, tmp_path):
    featurizer = TextTfidf(max_features=500)
    featurizer.fit_transform(list(titles["plot"][:100]))
    featurizer.save(tmp_path)
    json.loads((tmp_path / "tfidf.json").read_text())
    with np.load(tmp_path / "tfidf.npz", allow_pickle=False) as arrays:
        assert np.array_equal(arrays["word_idf"], featurizer.word.idf_)

    # A vocabulary and idf that disagree are a damaged bundle, not a model.
    saved = json.loads((tmp_path / "tfidf.json").read_text())
    saved["vectorizers"]["word"]["terms"].pop()
    (tmp_path / "tfidf.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="the bundle is damaged"):
        TextTfidf.load(tmp_path)


def test_a_linear_model_round_trips_through_its_files(titles, tmp_path):
    texts = list(titles["plot"][:200])
    labels = GenreVocabulary().encode(titles["genres"][:200])
    model = LinearGenreModel(max_features=2000)
    model.fit(texts, labels)
    model.save(tmp_path)
    loaded = LinearGenreModel.load(tmp_path)
    probe = [*list(titles["plot"][200:260]), *ODD_TEXTS]
    assert np.array_equal(loaded.predict_proba(probe), model.predict_proba(probe))
