"""The gate: pass, floors, regression, baseline, calibration, robustness; the champion rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from report_builders import make_report

from trending.modelling.evaluation import RobustnessCheck, RobustnessReport, build_report
from trending.modelling.gate import GateFailedError, GatePolicy, choose_champion, decide, enforce
from trending.rollout.release import judge_candidates, require_champion, run_summary

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


def stability_report(family: str = "xgboost", *, similarity: float, null: float = 0.9):
    """A report whose names check has the given similarities and one failing example."""
    check = RobustnessCheck(
        name="invariance:names",
        kind="invariance",
        description="names swapped",
        cases=200,
        passed=120,
        pass_rate=0.6,
        similarity=similarity,
        null_similarity=null,
        excess_change=round(null - similarity, 4),
        examples=[
            {
                "title": "The Shining",
                "edit": "'Anna' -> 'Diego'",
                "genres_before": ["Horror"],
                "genres_after": ["Comedy"],
                "lost": ["Horror"],
                "gained": ["Comedy"],
            }
        ],
    )
    report = make_report(family)
    return report.model_copy(
        update={"robustness": RobustnessReport(checks=[check], null_similarity=null)}
    )


def test_default_policy_judges_stability_against_the_null_edit_not_exact_sets():
    """BERT's real-data figures (61.5 % exact name matches) pass when the null edit moves as much."""
    baseline = make_report("linear", micro=0.6)
    near_null = decide(stability_report(similarity=0.87, null=0.89), baseline=baseline)
    assert near_null.passed, near_null.summary()
    fragile = decide(stability_report(similarity=0.70, null=0.89), baseline=baseline)
    assert {c.name for c in fragile.failures} == {"robustness:invariance:names"}
    message = fragile.summary()
    assert "'The Shining': 'Anna' -> 'Diego' => genres -Horror +Comedy" in message
    assert "excess change 0.190 above 0.100" in message
    erratic = decide(stability_report(similarity=0.5, null=0.5), baseline=baseline)
    assert {c.name for c in erratic.failures} == {"robustness:null_edit"}


def test_no_champion_raises_gate_failed_error_with_every_candidate_and_a_summary():
    baseline = make_report("linear", micro=0.6)
    reports = [stability_report("xgboost", similarity=0.6), make_report("bert", ece=0.4)]
    decisions, choice = judge_candidates(
        reports, baseline=baseline, production=None, policy=GatePolicy()
    )
    verdict = json.loads(
        json.dumps(
            {
                "run_id": "r1",
                "choice": choice.model_dump(),
                "decisions": {f: d.model_dump() for f, d in decisions.items()},
            },
            default=str,
        )
    )
    lines = run_summary(verdict, metrics={"linear": {"micro_f1": 0.6, "macro_f1": 0.5}})
    assert lines[0].startswith("no champion")
    assert any(
        line.startswith("  bert: micro-F1 0.700") and "calibration:ece" in line for line in lines
    )
    assert any("The Shining" in line for line in lines)
    assert "  linear (not a candidate): micro-F1 0.600, macro-F1 0.500" in lines
    assert lines[-1] == "registered: nothing"
    with pytest.raises(GateFailedError) as caught:
        require_champion(verdict)
    assert {d.model_family for d in caught.value.decisions} == {"xgboost", "bert"}
    assert "gate failed for bert" in str(caught.value)

    passing = judge_candidates(
        [make_report("bert", micro=0.7)], baseline=baseline, production=None, policy=GatePolicy()
    )
    won = {
        "run_id": "r2",
        "choice": passing[1].model_dump(),
        "decisions": {"bert": passing[0]["bert"].model_dump()},
    }
    assert require_champion(won) == "bert"
    assert run_summary(won, registered_version=3)[-1] == "registered: version 3 (bert)"


def report_from_rows(family: str, y_true: np.ndarray, y_pred: np.ndarray):
    frame = pd.DataFrame({"kind": ["movie"] * len(y_true), "plot": ["x" * 100] * len(y_true)})
    return build_report(
        model_family=family,
        genres=["Comedy", "Drama", "Horror"],
        thresholds=[0.5] * 3,
        frame=frame,
        y_true=y_true,
        scores=y_pred * 0.8 + 0.1,
    )


def test_trailing_the_baseline_within_noise_passes_and_clearly_below_fails():
    rng = np.random.default_rng(1)
    y = (rng.random((240, 3)) < 0.4).astype(int)

    def predictions(errors: int, seed: int) -> np.ndarray:
        wrong = np.random.default_rng(seed).choice(y.size, errors, replace=False)
        flipped = y.copy().ravel()
        flipped[wrong] = 1 - flipped[wrong]
        return flipped.reshape(y.shape)

    baseline = report_from_rows("linear", y, predictions(40, 2))
    close = report_from_rows("xgboost", y, predictions(42, 3))  # two more mistakes in 720
    far = report_from_rows("xgboost", y, predictions(120, 4))
    assert close.overall["micro_f1"] < baseline.overall["micro_f1"]
    near = decide(close, baseline=baseline)
    check = next(c for c in near.checks if c.name == "baseline:linear")
    assert check.passed and "not better beyond noise" in check.message, check.message
    worse = decide(far, baseline=baseline)
    assert "baseline:linear" in {c.name for c in worse.failures}
    assert "does not beat the baseline" in worse.summary()


def test_the_model_card_shows_the_failing_titles_and_their_edit(trained_bundle):
    from trending.modelling.bundle import read_manifest
    from trending.modelling.card import render_markdown

    report = stability_report(similarity=0.70, null=0.89)
    decision = decide(report, baseline=make_report("linear", micro=0.6))
    markdown = render_markdown(report, decision, read_manifest(trained_bundle))
    assert "## Robustness examples" in markdown
    row = next(line for line in markdown.splitlines() if "The Shining" in line)
    assert "'Anna' -> 'Diego'" in row and "Horror" in row and "Comedy" in row
    assert "| invariance:names | invariance | 0.600 | 0.700 | 0.890 | 0.190 |" in markdown
