"""The gate's bounds (``GatePolicy``) and one helper per check, each giving ``GateCheck``s.

Overall floors, floors on important slices, no regression against the production model beyond a
tolerance, a calibration bound, robustness (stability beyond the null edit, directional pass
rates), and beating the linear baseline. Each check carries the observed and required values and
a sentence a person can act on; ``trending.modelling.gate.decide`` runs them all.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from trending.modelling.evaluation import (
    EvaluationReport,
    RobustnessCheck,
    paired_micro_f1_difference,
)


class GatePolicy(BaseModel):
    """Configurable bounds a candidate must meet to be registered."""

    min_micro_f1: float = Field(0.5, ge=0, le=1)
    min_macro_f1: float = Field(0.35, ge=0, le=1)
    important_slices: list[str] = Field(
        default_factory=lambda: ["kind=movie", "kind=tv"],
        description="Slice names ('<dimension>=<value>') that get their own micro-F1 floor.",
    )
    min_slice_micro_f1: float = Field(0.4, ge=0, le=1)
    min_slice_support: int = Field(
        30, ge=1, description="Slices with fewer test rows are reported, not gated."
    )
    max_regression: float = Field(
        0.02, ge=0, description="Allowed drop of micro- and macro-F1 below the production model."
    )
    max_ece: float = Field(0.1, ge=0, le=1, description="Expected calibration error bound.")
    max_robustness_excess_change: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Stability checks (typos, casing, punctuation, names): the mean genre-set "
        "similarity may fall at most this far below the model's own similarity under the null "
        "edit (1 turns them off). Calibrated on the TMDb dev titles (docs/models.md).",
    )
    min_robustness_null_similarity: float = Field(
        0.75,
        ge=0,
        le=1,
        description="The genre sets must stay this similar under the null edit itself: a model "
        "whose genres move when a few function words go is erratic, whatever it is compared to.",
    )
    min_robustness_pass_rate: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Directional checks (and reports without similarities) must reach this pass "
        "rate (0 turns them off).",
    )
    must_beat_baseline: bool = True
    baseline_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1,
        description="A candidate trailing the linear baseline (by its margin) still passes when "
        "a paired bootstrap over the test rows cannot tell them apart: it fails only when the "
        "baseline is better with this one-sided confidence.",
    )
    baseline_margin: float = Field(
        0.0,
        ge=-0.05,
        le=0.5,
        description="Micro-F1 the candidate must add over the linear baseline; a negative "
        "margin lets it trail the baseline by that much (demos on tiny synthetic data only).",
    )


class GateCheck(BaseModel):
    """One gate condition: what was measured, what was required, and why it passed or failed."""

    name: str
    passed: bool
    observed: float | None = None
    required: float | None = None
    message: str


def _floor(name: str, observed: float, required: float, what: str) -> GateCheck:
    ok = observed >= required
    verdict = "meets" if ok else "is below"
    return GateCheck(
        name=name,
        passed=ok,
        observed=round(observed, 4),
        required=required,
        message=f"{what} {observed:.3f} {verdict} the floor {required:.3f}",
    )


def overall_floors(report: EvaluationReport, policy: GatePolicy) -> list[GateCheck]:
    """Micro- and macro-F1 over the whole test split against their floors."""
    overall = report.overall
    return [
        _floor("floor:micro_f1", overall["micro_f1"], policy.min_micro_f1, "micro-F1"),
        _floor("floor:macro_f1", overall["macro_f1"], policy.min_macro_f1, "macro-F1"),
    ]


def slice_floor(report: EvaluationReport, name: str, policy: GatePolicy) -> GateCheck:
    """Micro-F1 of one important slice against its floor; too small a slice is reported only."""
    piece = report.slice(name)
    if piece is None or piece.support < policy.min_slice_support:
        support = 0 if piece is None else piece.support
        return GateCheck(
            name=f"slice:{name}",
            passed=True,
            observed=None,
            required=policy.min_slice_micro_f1,
            message=f"not gated: the test split has {support} rows of slice {name} "
            f"(fewer than min_slice_support={policy.min_slice_support})",
        )
    return _floor(
        f"slice:{name}",
        piece.micro_f1,
        policy.min_slice_micro_f1,
        f"micro-F1 on slice {name} (n={piece.support})",
    )


def no_regression(
    report: EvaluationReport, production: EvaluationReport | None, policy: GatePolicy
) -> list[GateCheck]:
    """Micro- and macro-F1 may drop at most ``max_regression`` below the production model's."""
    if production is None:
        return [
            GateCheck(
                name="regression:production",
                passed=True,
                message="no production model to compare against: first version",
            )
        ]
    checks = []
    for metric in ("micro_f1", "macro_f1"):
        ours, theirs = report.overall[metric], production.overall[metric]
        checks.append(
            GateCheck(
                name=f"regression:{metric}",
                passed=ours >= theirs - policy.max_regression,
                observed=round(ours - theirs, 4),
                required=-policy.max_regression,
                message=f"{metric} {ours:.3f} vs production {theirs:.3f} "
                f"({ours - theirs:+.3f}; allowed drop {policy.max_regression:.3f})",
            )
        )
    return checks


def calibration_bound(report: EvaluationReport, policy: GatePolicy) -> GateCheck:
    """Expected calibration error within ``max_ece``; a report without calibration fails."""
    if report.calibration is None:
        return GateCheck(
            name="calibration:ece", passed=False, message="the report has no calibration"
        )
    ece = report.calibration.ece
    return GateCheck(
        name="calibration:ece",
        passed=ece <= policy.max_ece,
        observed=round(ece, 4),
        required=policy.max_ece,
        message=f"expected calibration error {ece:.3f} "
        f"{'within' if ece <= policy.max_ece else 'above'} the bound {policy.max_ece:.3f}",
    )


def robustness_checks(report: EvaluationReport, policy: GatePolicy) -> list[GateCheck]:
    """One check per robustness check run; none run at all fails.

    Stability checks are judged by their excess change over the null edit, directional checks
    (and older reports without similarities) by their pass rate. A failure names the titles and
    what changed.
    """
    if not report.robustness.checks:
        return [
            GateCheck(
                name="robustness",
                passed=False,
                message="no robustness checks were run: evaluate with robustness enabled",
            )
        ]
    null = report.robustness.null_similarity
    erratic = (
        []
        if null is None
        else [
            GateCheck(
                name="robustness:null_edit",
                passed=null >= policy.min_robustness_null_similarity,
                observed=null,
                required=policy.min_robustness_null_similarity,
                message=f"genre-set similarity {null:.3f} under the null edit "
                f"({report.robustness.null_edit}) "
                f"{'meets' if null >= policy.min_robustness_null_similarity else 'is below'} "
                f"{policy.min_robustness_null_similarity:.3f}",
            )
        ]
    )
    return erratic + [
        _stability(check, policy) if check.stability else _pass_rate(check, policy)
        for check in report.robustness.checks
    ]


def _stability(check: RobustnessCheck, policy: GatePolicy) -> GateCheck:
    excess = check.excess_change or 0.0
    ok = excess <= policy.max_robustness_excess_change
    message = (
        f"genre-set similarity {check.similarity:.3f} vs {check.null_similarity:.3f} under the "
        f"null edit: excess change {excess:.3f} "
        f"{'within' if ok else 'above'} {policy.max_robustness_excess_change:.3f} "
        f"({check.cases - check.passed}/{check.cases} genre sets changed; {check.description})"
    )
    return GateCheck(
        name=f"robustness:{check.name}",
        passed=ok,
        observed=excess,
        required=policy.max_robustness_excess_change,
        message=message if ok else message + _examples(check),
    )


def _pass_rate(check: RobustnessCheck, policy: GatePolicy) -> GateCheck:
    ok = check.pass_rate >= policy.min_robustness_pass_rate
    message = f"{check.passed}/{check.cases} cases pass ({check.description})"
    gain = check.mean_score_change
    if check.kind == "directional" and gain is not None:
        # Never moving the wrong way is not enough: a model blind to the cue never moves at all.
        responds = gain > 0 or policy.min_robustness_pass_rate == 0
        message += f"; mean score gain {gain:+.4f}" + ("" if responds else " (no response)")
        ok = ok and responds
    return GateCheck(
        name=f"robustness:{check.name}",
        passed=ok,
        observed=round(check.pass_rate, 4),
        required=policy.min_robustness_pass_rate,
        message=message if ok else message + _examples(check),
    )


def _examples(check: RobustnessCheck) -> str:
    """The failing examples as one clause: which title, what changed, what the model did."""
    parts = []
    for example in check.examples:
        who = repr(example.get("title") or example.get("text") or example.get("before", ""))[:70]
        if "genres_before" in example:
            moved = [f"-{g}" for g in example["lost"]] + [f"+{g}" for g in example["gained"]]
            outcome = f"genres {' '.join(moved) or 'changed'}"
        else:
            outcome = f"score {example['before']:.3f} -> {example['after']:.3f}"
        parts.append(f"{who}: {example.get('edit', 'edited')} => {outcome}")
    return "; e.g. " + " | ".join(parts) if parts else ""


def beats_baseline(
    report: EvaluationReport, baseline: EvaluationReport | None, policy: GatePolicy
) -> list[GateCheck]:
    """Micro-F1 above the linear baseline's by more than ``baseline_margin``, when required.

    A candidate below that passes when the difference is within noise: with both reports'
    per-row counts on the same test rows, a paired bootstrap gives the one-sided upper
    confidence bound of (candidate - baseline); only a bound at or below the margin (the
    baseline is better beyond doubt) fails. Without row counts the point estimate decides.
    """
    if not policy.must_beat_baseline:
        return []
    if baseline is None:
        return [
            GateCheck(
                name="baseline:linear",
                passed=False,
                message="no linear baseline report was given: train and evaluate the "
                "'linear' family on the same split",
            )
        ]
    ours, theirs = report.overall["micro_f1"], baseline.overall["micro_f1"]
    margin = policy.baseline_margin
    verdict = f"micro-F1 {ours:.3f} vs linear baseline {theirs:.3f} ({ours - theirs:+.3f})"
    if ours > theirs + margin:
        ok, why = True, f"beats it by more than {margin:+.3f}"
    elif (
        report.row_counts
        and baseline.row_counts
        and len(report.row_counts) == len(baseline.row_counts)
    ):
        upper = float(
            np.quantile(
                paired_micro_f1_difference(report.row_counts, baseline.row_counts),
                policy.baseline_confidence,
            )
        )
        ok = upper > margin
        confidence = f"{policy.baseline_confidence:.0%}"
        why = (
            f"paired bootstrap over {len(report.row_counts)} test rows: {confidence} upper bound "
            f"of the difference {upper:+.3f} "
            + (
                f"above {margin:+.3f}, so the baseline is not better beyond noise"
                if ok
                else f"at or below {margin:+.3f}: the candidate does not beat the baseline"
            )
        )
    else:
        ok, why = False, f"does not beat it by more than {margin:+.3f}"
    return [
        GateCheck(
            name="baseline:linear",
            passed=ok,
            observed=round(ours - theirs, 4),
            required=margin,
            message=f"{verdict}: {why}",
        )
    ]
