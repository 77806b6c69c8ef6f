"""BERT fine-tuning on tiny data: trains a few steps, predicts, round-trips through a bundle.

Uses the packaged all-MiniLM-L6-v2 weights (no network).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from trending.bundle import read_manifest
from trending.models import GenrePredictor
from trending.models.base import model_family
from trending.training import train_bundle

TINY_BERT = {"max_length": 32, "epochs": 2, "batch_size": 16, "max_steps": 4, "threads": 2}


@pytest.mark.slow
def test_bert_trains_predicts_and_round_trips(tmp_path, titles, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = titles.iloc[:80]
    manifest = train_bundle(rows, tmp_path / "bert", family="bert", params=TINY_BERT, seed=3)
    assert manifest.model_family == "bert"
    assert manifest.params["steps_run"] == 4  # max_steps caps training
    # Thresholds come from the early-stopping split, so the model fits the other 80 %.
    assert manifest.params["thresholds_from"] == "validation split"
    assert manifest.params["threshold_rows"] == int(manifest.params["train_rows"] * 0.2)
    assert {"model/model.safetensors", "model/tokenizer.json", "model/config.json"} <= set(
        manifest.files
    )
    assert manifest.featurizer["max_length"] == 32

    predictor = GenrePredictor.from_bundle(tmp_path / "bert")
    [prediction] = predictor.predict_titles([("A haunted house and a demon.", [])])
    assert set(prediction.scores) == set(predictor.genres)
    texts = list(rows["plot"][:4])
    reloaded = model_family("bert").load(tmp_path / "bert" / "model")
    np.testing.assert_allclose(reloaded.predict_proba(texts), predictor.scores(texts), atol=1e-6)
    assert read_manifest(tmp_path / "bert").genres == predictor.genres

    # After 4 steps BERT is weak on these titles, so validation picks some TF-IDF weight.
    w = reloaded.blend_weight
    assert 0 <= w < 1 and manifest.featurizer["tfidf_blend_weight"] == round(1 - w, 2)
    assert manifest.params["blend_weight"] == w
    assert any(f.startswith("model/tfidf/") for f in manifest.files)
    bert_only = 1 / (1 + np.exp(-reloaded._logits(texts, reloaded._device(), 8)))
    expected = w * bert_only + (1 - w) * reloaded.tfidf.predict_proba(texts)
    np.testing.assert_allclose(predictor.scores(texts), expected, atol=1e-5)


def test_bert_refuses_a_model_path_it_cannot_load_offline(tmp_path, titles):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = model_family("bert")(model_path=str(tmp_path / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="local Hugging Face model folder"):
        model.fit(list(titles["plot"][:12]), np.zeros((12, 19), dtype=np.int8))


def test_a_zero_blend_weight_serves_tfidf_without_the_encoder(tmp_path, titles, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train_bundle(titles.iloc[:80], tmp_path / "bert", family="bert", params=TINY_BERT, seed=3)
    model = model_family("bert").load(tmp_path / "bert" / "model")
    model.blend_weight = 0.0
    texts = list(titles["plot"][:4])

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran although its blend weight is 0")

    monkeypatch.setattr(model, "_logits", no_encoder)
    np.testing.assert_allclose(model.predict_proba(texts), model.tfidf.predict_proba(texts))
