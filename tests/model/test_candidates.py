"""Candidates trained and evaluated end to end; a broken candidate is stopped by the gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from small_params import TEST_XGBOOST

from trending.modelling.evaluation import EvaluationReport
from trending.modelling.families import GenrePredictor
from trending.modelling.gate import GateFailedError, GatePolicy, choose_champion, decide, enforce
from trending.modelling.training import evaluate_candidate, train_bundle

POLICY = GatePolicy(min_micro_f1=0.6, min_macro_f1=0.4, max_ece=0.2, min_robustness_pass_rate=0.5)


def test_reports_have_metrics_slices_calibration_robustness_and_plots(reports):
    report = reports["xgboost"]
    assert report.overall["micro_f1"] > 0.6
    assert {g.genre for g in report.per_genre} == set(report.genres)
    assert report.slice("kind=movie") is not None and report.slice("kind=tv") is not None
    assert report.calibration is not None and 0 <= report.calibration.ece <= 1
    kinds = {c.kind for c in report.robustness.checks}
    assert kinds == {"perturbation", "invariance", "directional"}
    assert all(Path(p).is_file() for p in report.plots.values()) and len(report.plots) == 3
    # A report folder copied elsewhere (a pipeline step) still finds its plots.
    copy = Path(report.plots["reliability"]).parent.parent / "copied"
    shutil.copytree(Path(report.plots["reliability"]).parent, copy)
    stale = {name: f"/gone/{Path(p).name}" for name, p in report.plots.items()}
    report.model_copy(update={"plots": stale}).write(copy / "report.json")
    moved = EvaluationReport.read(copy / "report.json")
    assert moved.plots["reliability"] == str(copy / "reliability.png")


def test_baselines_are_trained_and_prior_is_far_below_linear(reports):
    assert reports["prior"].overall["micro_f1"] < reports["linear"].overall["micro_f1"] - 0.3
    choice = choose_champion([reports["xgboost"], reports["linear"], reports["prior"]])
    assert choice.champion in {"xgboost", "linear"}
    assert choice.candidate("prior").micro_f1 == reports["prior"].overall["micro_f1"]


def test_each_family_round_trips_through_its_bundle(candidates, split):
    _, test = split
    texts = [p for p in test["plot"][:5]]
    for family, bundle in candidates.items():
        predictor = GenrePredictor.from_bundle(bundle)
        assert predictor.manifest.model_family == family
        scores = predictor.scores(texts)
        assert scores.shape == (5, len(predictor.genres))
        assert np.all((scores >= 0) & (scores <= 1))


def test_shuffled_labels_are_stopped_by_the_gate_with_readable_reasons(tmp_path, split, reports):
    train, test = split
    broken = train.copy()
    broken["genres"] = broken["genres"].sample(frac=1.0, random_state=1).to_list()
    train_bundle(broken, tmp_path / "broken", params=TEST_XGBOOST)
    report = evaluate_candidate(tmp_path / "broken", test, robustness_cases=40)
    decision = decide(report, baseline=reports["linear"], policy=POLICY)
    assert not decision.passed
    default = decide(report, baseline=reports["linear"], policy=GatePolicy())
    assert {"floor:micro_f1", "baseline:linear"} <= {c.name for c in default.failures}
    failed = {c.name for c in decision.failures}
    assert {"floor:micro_f1", "baseline:linear"} <= failed
    with pytest.raises(GateFailedError) as caught:
        enforce(decision)
    message = str(caught.value)
    assert message.startswith("gate failed for xgboost:")
    assert "is below the floor 0.600" in message and "does not beat" in message


def test_default_robustness_policy_admits_the_trained_candidates(reports):
    """Models trained on titles pass every robustness check of GatePolicy() (stability vs null)."""
    for family in ("xgboost", "linear"):
        decision = decide(reports[family], baseline=reports["prior"], policy=GatePolicy())
        failing = [c for c in decision.failures if c.name.startswith("robustness")]
        assert failing == [], "\n".join(f"{family} {c.name}: {c.message}" for c in failing)


def test_xgboost_beats_the_linear_baseline_under_the_default_margin(reports):
    """The booster blended with its own logistic scores is not worse than the baseline it stacks."""
    decision = decide(reports["xgboost"], baseline=reports["linear"], policy=GatePolicy())
    check = next(c for c in decision.checks if c.name == "baseline:linear")
    assert check.passed, check.message
