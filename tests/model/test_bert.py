"""BERT fine-tuning on tiny data: trains a few steps, predicts, round-trips through a bundle.

Uses the packaged all-MiniLM-L6-v2 weights (no network).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from trending.genres import GenreVocabulary
from trending.modelling.bundle import read_manifest
from trending.modelling.families import GenrePredictor
from trending.modelling.families.base import model_family
from trending.modelling.families.bert_network import length_grouped_batches
from trending.modelling.families.tfidf import OneVsRestLogistic
from trending.modelling.training import train_bundle

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
    # Nothing pickled: safetensors, JSON, the tokenizer's text files, numpy arrays.
    assert {Path(f).suffix for f in manifest.files} <= {".safetensors", ".json", ".txt", ".npz"}

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
    bert_only = 1 / (1 + np.exp(-reloaded._logits(texts, 8)))
    expected = w * bert_only + (1 - w) * reloaded.tfidf.predict_proba(texts)
    np.testing.assert_allclose(predictor.scores(texts), expected, atol=1e-5)


@pytest.mark.slow  # imports torch and transformers
def test_bert_refuses_a_model_path_it_cannot_load_offline(tmp_path, titles):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = model_family("bert")(model_path=str(tmp_path / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="local Hugging Face model folder"):
        model.fit(list(titles["plot"][:12]), np.zeros((12, 19), dtype=np.int8))


@pytest.mark.slow  # a BERT encoder forward/backward on CPU
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


@pytest.mark.slow  # a BERT encoder forward/backward on CPU
def test_the_warm_start_layer_is_the_logistic_regression_on_frozen_embeddings(titles):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = list(titles["plot"][:60])
    labels = GenreVocabulary().encode(titles["genres"][:60]).astype(np.int8)
    labels[:, 0] = 0  # a genre nobody has: its score is the base rate, not a fitted model
    model = model_family("bert")(
        max_length=32, epochs=0, validation_share=0, tfidf_blend=False, threads=2
    )
    model.fit(texts, labels)
    embeddings = model._forward_all(texts, 16, embed=True)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    expected = OneVsRestLogistic(c=1.0, balanced=False).fit(embeddings, labels)
    scores = model.predict_proba(texts)
    np.testing.assert_allclose(scores, expected.predict_proba(embeddings), atol=1e-4)
    assert scores[:, 0].max() < 1e-3
    assert model.params["epochs_run"] == 0 and model.params["steps_run"] == 0


@pytest.mark.slow  # a BERT encoder forward/backward on CPU
def test_fine_tuning_that_hurts_validation_keeps_the_warm_start(titles):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = list(titles["plot"][:60])
    labels = GenreVocabulary().encode(titles["genres"][:60])
    model = model_family("bert")(
        max_length=32,
        epochs=1,
        learning_rate=0.5,
        warmup_ratio=0,
        tfidf_blend=False,
        batch_size=8,
        threads=2,
    )
    model.fit(texts, labels)
    assert model.params["steps_run"] > 0
    [warm, tuned] = model.history
    assert tuned["valid_loss"] > warm["valid_loss"]  # a learning rate of 0.5 wrecks the encoder
    assert model.params["best_epoch"] == 0
    rows, kept_scores = model.held_out_scores()
    np.testing.assert_allclose(
        model.predict_proba([texts[i] for i in rows]), kept_scores, atol=1e-5
    )


def test_length_grouped_batches_cover_every_row_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=2000)
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1))
    rows = np.concatenate(batches)
    assert sorted(rows) == list(range(2000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean(
        [np.ptp(lengths[b]) for b in np.array_split(rng.permutation(2000), 125)]
    )
    assert spread < random_spread / 5
    again = length_grouped_batches(lengths, 16, np.random.default_rng(2))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_a_bundle_from_the_old_cls_head_gets_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="retrain it"):
        model_family("bert").load(tmp_path)


def test_bert_runs_on_cuda_when_present_unless_told_otherwise(monkeypatch):
    import torch

    from serving.predictor.model import device_of

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_of(model_family("bert")()) == "cuda"
    assert device_of(model_family("bert")(device="cpu")) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_of(model_family("bert")()) == "cpu"
