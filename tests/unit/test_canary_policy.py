"""Canary decisions over metrics snapshots, and policy files that are wrong get clear errors."""

from __future__ import annotations

import pytest

from trending.canary import (
    CanaryPolicy,
    CanaryPolicyError,
    MetricsSnapshot,
    decide,
    js_divergence,
    load_policy,
    next_step,
)
from trending.shadow import compare_predictions

GENRES = {"Comedy": 40, "Drama": 35, "Horror": 25}
POLICY = CanaryPolicy(min_requests=50, min_genre_predictions=20)


def _snap(canary_errors=0.0, canary_genres=None, canary_requests=100.0, p95=(0.02, 0.02)):
    return MetricsSnapshot.model_validate({
        "window_seconds": 60, "traffic_percent": 10,
        "stable": {"version": 1, "requests": 900, "errors": 0, "p95_latency_seconds": p95[0],
                   "genre_counts": {k: v * 9 for k, v in GENRES.items()}},
        "canary": {"version": 2, "requests": canary_requests, "errors": canary_errors,
                   "p95_latency_seconds": p95[1], "genre_counts": canary_genres or GENRES},
    })  # fmt: skip


def test_healthy_canary_promotes_with_evidence():
    decision = decide(POLICY, _snap())
    assert decision.action == "promote"
    evidence = decision.evidence(_snap(), POLICY)
    assert {c["name"] for c in evidence["checks"]} >= {"error_rate", "genre_divergence"}
    assert evidence["policy"]["max_genre_divergence"] == POLICY.max_genre_divergence


def test_errors_roll_back():
    decision = decide(POLICY, _snap(canary_errors=10))
    assert decision.action == "rollback" and decision.failed[0].name == "error_rate"


def test_genre_divergence_rolls_back_even_with_good_ops():
    decision = decide(POLICY, _snap(canary_genres={"Western": 60, "Musical": 40}))
    assert decision.action == "rollback"
    assert [c.name for c in decision.failed] == ["genre_divergence"]


def test_latency_regression_rolls_back():
    assert decide(POLICY, _snap(p95=(0.02, 0.5))).action == "rollback"


def test_too_little_traffic_holds_then_rolls_back():
    assert decide(POLICY, _snap(canary_requests=5)).action == "hold"
    assert (
        decide(POLICY, _snap(canary_requests=5), holds_so_far=POLICY.max_holds).action == "rollback"
    )


def test_js_divergence_bounds():
    assert js_divergence(GENRES, GENRES) == pytest.approx(0.0)
    assert js_divergence({"a": 1}, {"b": 1}) == pytest.approx(1.0)


def test_steps():
    assert next_step(POLICY, 10) == 25 and next_step(POLICY, 50) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [10, 5]", "increase strictly"),
        ("steps: [10, 100]", "1..99"),
        ("max_error_rate: 2", "max_error_rate"),
        ("windw_seconds: 3", "windw_seconds"),
        ("- a list", "must be a mapping"),
        ("steps: [", "not valid YAML"),
        ("required_checks: [vibes]", "unknown checks"),
    ],
)
def test_bad_policy_files_say_what_to_fix(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(CanaryPolicyError, match=message):
        load_policy(path)


def test_default_policy_file_loads():
    from pathlib import Path

    policy = load_policy(Path(__file__).resolve().parents[2] / "policies" / "canary.yaml")
    assert policy.steps == [10, 25, 50]


def test_shadow_comparison():
    a = {"predictions": [{"genres": ["Comedy"], "scores": {"Comedy": 0.9, "Drama": 0.1}}]}
    b = {"predictions": [{"genres": ["Comedy", "Drama"], "scores": {"Comedy": 0.7, "Drama": 0.6}}]}
    result = compare_predictions(a, b)
    assert result.agreement == pytest.approx(0.5) and result.score_delta == pytest.approx(0.35)
