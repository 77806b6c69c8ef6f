"""The gate: pass, floors, regression, baseline, calibration, robustness; the champion rule."""

from __future__ import annotations

import pytest
from report_builders import make_report

from trending.modelling.gate import GateFailedError, GatePolicy, choose_champion, decide, enforce

POLICY = GatePolicy(
    min_micro_f1=0.6, min_macro_f1=0.5, min_slice_micro_f1=0.5, min_slice_support=30
)


def failed(decision) -> set[str]:
    return {c.name for c in decision.failures}


def test_a_good_candidate_passes_with_every_reason_recorded():
    decision = decide(
        make_report(micro=0.7), baseline=make_report("linear", micro=0.65), policy=POLICY
    )
    assert decision.passed, decision.summary()
    names = {c.name for c in decision.checks}
    assert {"floor:micro_f1", "slice:kind=tv", "calibration:ece", "baseline:linear"} <= names
    assert "regression:production" in names  # no production yet, and it says so
    assert enforce(decision) is decision


def test_fails_on_overall_floor_and_slice_floor():
    decision = decide(
        make_report(micro=0.55, tv_micro=0.3),
        baseline=make_report("linear", micro=0.5),
        policy=POLICY,
    )
    assert not decision.passed
    assert failed(decision) == {"floor:micro_f1", "slice:kind=tv"}
    with pytest.raises(GateFailedError, match=r"micro-F1 0\.550 is below the floor 0\.600"):
        enforce(decision)


def test_fails_on_regression_beyond_tolerance_only():
    baseline = make_report("linear", micro=0.6)
    small_drop = decide(
        make_report(micro=0.69),
        baseline=baseline,
        production=make_report(micro=0.70),
        policy=POLICY,
    )
    assert small_drop.passed
    big_drop = decide(
        make_report(micro=0.66),
        baseline=baseline,
        production=make_report(micro=0.70),
        policy=POLICY,
    )
    assert failed(big_drop) == {"regression:micro_f1"}
    assert "vs production 0.700" in big_drop.summary()


def test_fails_when_not_beating_the_linear_baseline():
    decision = decide(
        make_report(micro=0.7), baseline=make_report("linear", micro=0.7), policy=POLICY
    )
    assert failed(decision) == {"baseline:linear"}
    assert "does not beat" in decision.summary()
    missing = decide(make_report(micro=0.7), baseline=None, policy=POLICY)
    assert failed(missing) == {"baseline:linear"}


def test_a_negative_baseline_margin_lets_a_candidate_trail_by_that_much():
    lenient = POLICY.model_copy(update={"baseline_margin": -0.01})
    baseline = make_report("linear", micro=0.7)
    assert failed(decide(make_report(micro=0.695), baseline=baseline, policy=lenient)) == set()
    trailing = decide(make_report(micro=0.68), baseline=baseline, policy=lenient)
    assert failed(trailing) == {"baseline:linear"}
    with pytest.raises(ValueError, match="baseline_margin"):
        GatePolicy(baseline_margin=-0.2)


def test_fails_on_calibration_and_robustness_bounds():
    decision = decide(
        make_report(ece=0.3, pass_rate=0.5),
        baseline=make_report("linear", micro=0.5),
        policy=POLICY,
    )
    assert failed(decision) == {"calibration:ece", "robustness:invariance:names"}


def test_champion_is_best_passing_candidate_and_losers_are_kept():
    xgb, bert = make_report("xgboost", micro=0.66), make_report("bert", micro=0.70)
    baseline = make_report("linear", micro=0.6)
    decisions = {r.model_family: decide(r, baseline=baseline, policy=POLICY) for r in (xgb, bert)}
    choice = choose_champion([xgb, bert], decisions)
    assert choice.champion == "bert"
    assert choice.challengers == ["xgboost"]
    assert choice.candidate("xgboost").micro_f1 == 0.66
    assert "highest test micro-F1" in choice.rule


def test_champion_tie_goes_to_macro_then_cheaper_family_and_failed_never_wins():
    tie = choose_champion(
        [
            make_report("bert", micro=0.701, macro=0.6),
            make_report("xgboost", micro=0.699, macro=0.6),
        ]
    )
    assert tie.champion == "xgboost"  # tied on micro and macro: cheaper to serve
    baseline = make_report("linear", micro=0.6)
    weak, strong = make_report("xgboost", micro=0.65), make_report("bert", micro=0.9, ece=0.5)
    decisions = {
        r.model_family: decide(r, baseline=baseline, policy=POLICY) for r in (weak, strong)
    }
    choice = choose_champion([weak, strong], decisions)
    assert choice.champion == "xgboost"
    assert choice.candidate("bert").gate_failures == ["calibration:ece"]
    all_fail = {k: d.model_copy(update={"passed": False}) for k, d in decisions.items()}
    assert choose_champion([weak, strong], all_fail).champion is None
