"""The int8 BERT variant: chosen at export after the check against fp32, loaded without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

from trending.modelling.bundle import quantization, verify_bundle
from trending.modelling.families.base import model_family
from trending.modelling.families.bert_network import served_variant
from trending.modelling.gate import GateCheck
from trending.modelling.training import train_bundle

# BERT alone (no TF-IDF blend, which could take all the weight and leave nothing to quantize).
TINY = {"max_length": 48, "epochs": 1, "batch_size": 16, "max_steps": 3, "tfidf_blend": False}


def quantized_layers(model) -> int:
    return sum(isinstance(m, DynamicQuantizedLinear) for m in model.model.encoder.modules())


@pytest.mark.slow
def test_the_bundle_records_the_checked_variant_and_a_cpu_load_serves_it(
    tmp_path, titles, monkeypatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manifest = train_bundle(titles.iloc[:100], tmp_path / "b", family="bert", params=TINY, seed=3)
    check = manifest.featurizer["quantization_check"]
    assert check["name"] == "quantization"
    assert manifest.featurizer["quantization"] == ("int8" if check["passed"] else "none")
    # Nothing pickled, also for the int8 variant: fp32 safetensors, quantized at load.
    assert {Path(f).suffix for f in manifest.files} <= {".safetensors", ".json", ".txt", ".npz"}
    verify_bundle(tmp_path / "b")

    bert = model_family("bert")
    int8 = bert.load(tmp_path / "b" / "model", quantization="int8")
    fp32 = bert.load(tmp_path / "b" / "model", quantization="none")
    assert quantized_layers(int8) == 37  # 6 layers x (q, k, v, attention out, up, down) + pooler
    assert quantized_layers(fp32) == 0
    texts = list(titles["plot"][100:140])
    difference = np.abs(int8.predict_proba(texts) - fp32.predict_proba(texts)).max()
    assert 0 < difference < quantization.QuantizationLimits().max_score_difference
    as_recorded = bert.load(tmp_path / "b" / "model")
    assert as_recorded.running == manifest.featurizer["quantization"]


@pytest.mark.slow
def test_a_failed_check_keeps_fp32(tmp_path, titles, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    failed = GateCheck(name="quantization", passed=False, observed=0.02, message="lost 0.02")
    monkeypatch.setattr(quantization, "compare_quantized", lambda *a, **k: failed)
    manifest = train_bundle(titles.iloc[:100], tmp_path / "b", family="bert", params=TINY, seed=3)
    assert manifest.featurizer["quantization"] == "none"
    assert manifest.featurizer["quantization_check"]["passed"] is False
    loaded = model_family("bert").load(tmp_path / "b" / "model")
    assert loaded.running == "none" and quantized_layers(loaded) == 0


def test_a_gpu_serves_fp32_whatever_the_bundle_records() -> None:
    assert served_variant("int8", torch.device("cuda")) == "none"
    assert served_variant("int8", torch.device("cpu")) == "int8"
    assert served_variant("none", torch.device("cpu")) == "none"


def test_an_unknown_variant_is_refused(titles) -> None:
    model = model_family("bert")(quantization="int4")
    with pytest.raises(ValueError, match="quantization='int4'"):
        model._choose_quantization([], np.zeros((0, 2)))
