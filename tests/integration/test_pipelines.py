"""Both pipelines run for real through kfp.local: training registers, retraining stages a canary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.pipeline import pipeline_arguments
from pipelines.run import run_local
from trending.data.ingest import ingest_frame
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.modelling.bundle import verify_bundle
from trending.modelling.runs import RunLog
from trending.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small but real: every step runs, BERT takes two optimizer steps, robustness checks a few texts.
FAST = {
    "xgboost_params_json": json.dumps(
        {
            "n_estimators": 20,
            "max_depth": 3,
            "max_features": 2000,
            "char_features": 0,
            "stack_folds": 2,
        }
    ),
    "bert_params_json": json.dumps(
        {"max_steps": 2, "max_length": 32, "epochs": 1, "batch_size": 16}
    ),
    "robustness_cases": 10,
}
# The data are tiny, so the floors are off; the regression rule (candidate vs production) stays.
LENIENT = {"min_micro_f1": 0, "min_macro_f1": 0, "min_slice_micro_f1": 0, "max_ece": 1,
           "min_robustness_pass_rate": 0, "must_beat_baseline": False}  # fmt: skip


def test_training_then_continuous_training(settings, tmp_path):
    ingest_frame(generate_titles(260, seed=5), settings, source="synthetic", max_reject_rate=0.5)
    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    runs = RunLog.from_uri(settings.resolved_registry_uri, settings.model_name)

    training = {
        **pipeline_arguments(settings, "training"),
        **FAST,
        "gate_policy_json": json.dumps(LENIENT),
    }
    decision = run_local("training", training, tmp_path / "kfp", tmp_path / "training.log")

    run = runs.get(json.loads(Path(decision.path).read_text())["run_id"])
    assert run.status == "succeeded" and run.registered_version == 1
    assert set(run.metrics) == {"xgboost", "bert", "linear", "prior"}
    assert registry.resolve("production") == 1
    bundle = verify_bundle(registry.download(1, tmp_path / "v1"))
    assert (
        any(f.startswith("drift/") for f in bundle.files) and "card/model_card.html" in bundle.files
    )

    # New (drifted) titles arrive; retraining on the growing window compares with production.
    ingest_frame(
        generate_titles(120, seed=6, drift=DriftKnobs(vocabulary_shift=0.3)), settings, source="synthetic",
        max_reject_rate=0.5,
    )  # fmt: skip
    retraining = {
        **pipeline_arguments(settings, "continuous-training", reason="drift", window="growing"),
        **FAST,
        "gate_policy_json": json.dumps({**LENIENT, "max_regression": 1.0}),
    }
    outcome = run_local("continuous-training", retraining, tmp_path / "kfp", tmp_path / "ct.log")

    assert outcome == "deployed-as-canary"
    assert registry.resolve("canary") == 2 and registry.resolve("production") == 1
    events = [e for e in registry.events() if e.kind.startswith("retrain_")]
    assert [e.kind for e in events] == ["retrain_started", "retrain_finished"]
    finished = events[-1].details
    assert finished["outcome"] == "deployed-as-canary"
    assert (
        "production" in finished["comparison"]
        and finished["comparison"]["production"]["micro_f1"] >= 0
    )
