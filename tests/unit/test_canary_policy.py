"""Canary decisions over metrics snapshots, and policy files that are wrong get clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from trending.rollout.canary import (
    CanaryPolicy,
    CanaryPolicyError,
    MetricsSnapshot,
    decide,
    js_divergence,
    js_noise_allowance,
    load_policy,
    next_step,
)
from trending.rollout.shadow import compare_predictions

GENRES = {"Comedy": 40, "Drama": 35, "Horror": 25}
POLICY = CanaryPolicy(min_requests=50, min_genre_predictions=20)


def _snap(canary_errors=0.0, canary_genres=None, canary_requests=100.0, p95=(0.02, 0.02)):
    return MetricsSnapshot.model_validate(
        {
            "window_seconds": 60,
            "traffic_percent": 10,
            "stable": {
                "version": 1,
                "requests": 900,
                "errors": 0,
                "p95_latency_seconds": p95[0],
                "genre_counts": {k: v * 9 for k, v in GENRES.items()},
            },
            "canary": {
                "version": 2,
                "requests": canary_requests,
                "errors": canary_errors,
                "p95_latency_seconds": p95[1],
                "genre_counts": canary_genres or GENRES,
            },
        }
    )


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


def _sampled_snapshot(rng, canary_rates, stable_rates, n_canary, n_stable):
    genres = [f"g{i}" for i in range(len(stable_rates))]
    return MetricsSnapshot.model_validate(
        {
            "window_seconds": 60,
            "traffic_percent": 25,
            "stable": {
                "version": 1,
                "requests": 900,
                "errors": 0,
                "p95_latency_seconds": 0.02,
                "genre_counts": dict(
                    zip(genres, rng.multinomial(n_stable, stable_rates), strict=True)
                ),
            },
            "canary": {
                "version": 2,
                "requests": 300,
                "errors": 0,
                "p95_latency_seconds": 0.02,
                "genre_counts": dict(
                    zip(genres, rng.multinomial(n_canary, canary_rates), strict=True)
                ),
            },
        }
    )


def test_sampling_noise_alone_rarely_rolls_back_at_the_minimum_sample():
    # 19 genres, 50 labels a side (the default minimum): the raw divergence of two samples of ONE
    # distribution averages ~0.15, above the 0.1 limit, so without the allowance most healthy
    # canaries judged at the minimum would be rolled back.
    rng = np.random.default_rng(0)
    rates = rng.dirichlet(np.full(19, 2.0))
    policy = CanaryPolicy(min_requests=50)
    raw = [
        js_divergence(*(dict(enumerate(rng.multinomial(50, rates))) for _ in "ab"))
        for _ in range(200)
    ]
    assert np.mean(np.array(raw) > policy.max_genre_divergence) > 0.5
    outcomes = [
        decide(policy, _sampled_snapshot(rng, rates, rates, 50, 50)).action for _ in range(200)
    ]
    assert outcomes.count("rollback") <= 10


@pytest.mark.parametrize(("concentration", "labels"), [(0.5, 50), (1.5, 10_000)])
def test_a_real_genre_shift_still_rolls_back(concentration, labels):
    # A rotated-label model (the integration test's): a large shift is caught at the minimum
    # sample, a shift just above the limit once there are enough labels to tell it from noise.
    rng = np.random.default_rng(1)
    rates = rng.dirichlet(np.full(19, concentration))
    shifted = np.roll(rates, 5)
    policy = CanaryPolicy(min_requests=50)
    assert js_divergence(dict(enumerate(rates)), dict(enumerate(shifted))) > 0.1
    decisions = [
        decide(policy, _sampled_snapshot(rng, shifted, rates, labels, 3 * labels))
        for _ in range(50)
    ]
    assert all([c.name for c in d.failed] == ["genre_divergence"] for d in decisions)


def test_the_noise_allowance_shrinks_with_more_labels():
    small = js_noise_allowance(50, 50, 19, 0.99)
    large = js_noise_allowance(5000, 5000, 19, 0.99)
    assert large == pytest.approx(small / 100)
    assert js_noise_allowance(50, 50, 1, 0.99) == 0.0


def _scored(canary_mean, canary_n, stable_mean=0.4, stable_n=600):
    snap = _snap()
    snap.canary.mean_scores, snap.canary.score_counts = {"Drama": canary_mean}, {"Drama": canary_n}
    snap.stable.mean_scores, snap.stable.score_counts = {"Drama": stable_mean}, {"Drama": stable_n}
    return snap


@pytest.mark.parametrize(
    ("canary_mean", "canary_n", "action"),
    [
        (0.68, 20, "promote"),  # +0.28 from 20 titles: chance can do that (allowance ~0.27)
        (0.68, 2000, "rollback"),  # the same shift over 2,000 titles is the model
        (0.50, 2000, "promote"),  # +0.10 over 2,000 titles: a real but allowed shift
    ],
)
def test_mean_score_shift_allows_for_sampling_noise(canary_mean, canary_n, action):
    decision = decide(POLICY, _scored(canary_mean, canary_n))
    assert decision.action == action
    check = next(c for c in decision.checks if c.name == "mean_score_shift")
    assert check.value == pytest.approx(abs(canary_mean - 0.4))
    assert check.threshold > POLICY.max_mean_score_shift


def test_mean_score_shift_without_counts_uses_the_bare_limit():
    snap = _scored(0.6, 0)
    snap.canary.score_counts = {}
    decision = decide(POLICY, snap)
    assert decision.action == "rollback"
    assert [c.threshold for c in decision.failed] == [POLICY.max_mean_score_shift]
