"""The gate before registration, and the champion/challenger choice.

``decide`` checks one candidate's ``EvaluationReport`` against a ``GatePolicy`` with the checks
of ``trending.modelling.gate_checks`` (overall and slice floors, no regression against
production, calibration, robustness, beating the linear baseline); the decision passes only when
all checks pass. ``enforce`` raises ``GateFailedError`` so a pipeline stops before registration.

``choose_champion`` picks among candidates evaluated on the same split (the rule is in its
docstring and in docs/models.md) and keeps every loser's metrics in the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate_checks import (
    GateCheck,
    GatePolicy,
    beats_baseline,
    calibration_bound,
    no_regression,
    overall_floors,
    robustness_checks,
    slice_floor,
)

__all__ = [
    "CHAMPION_RULE",
    "SERVING_COST_ORDER",
    "CandidateSummary",
    "ChampionChoice",
    "GateCheck",
    "GateDecision",
    "GateFailedError",
    "GatePolicy",
    "choose_champion",
    "decide",
    "enforce",
]


class GateDecision(BaseModel):
    """The gate's verdict on one candidate, with every reason."""

    model_family: str
    passed: bool
    checks: list[GateCheck]
    policy: GatePolicy

    @property
    def failures(self) -> list[GateCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line per failed check (or a pass line), for logs and exceptions."""
        if self.passed:
            return f"gate passed for {self.model_family}: {len(self.checks)} checks passed"
        lines = [f"gate failed for {self.model_family}:"]
        lines += [f"  - {c.name}: {c.message}" for c in self.failures]
        return "\n".join(lines)


class GateFailedError(RuntimeError):
    """A candidate failed the gate (or no candidate passed it); registration must not happen.

    ``decision`` is the first failed decision, ``decisions`` every one given (``also`` adds the
    other candidates' when a whole run has no champion).
    """

    def __init__(self, decision: GateDecision, *, also: Sequence[GateDecision] = ()) -> None:
        self.decision = decision
        self.decisions = [decision, *also]
        super().__init__("\n".join(d.summary() for d in self.decisions))


def decide(
    report: EvaluationReport,
    *,
    baseline: EvaluationReport | None,
    production: EvaluationReport | None = None,
    policy: GatePolicy | None = None,
) -> GateDecision:
    """Check a candidate against the policy.

    Args:
        report: The candidate's evaluation on the test split.
        baseline: The linear baseline evaluated on the same split. Required when
            ``policy.must_beat_baseline`` (a missing baseline then fails the gate).
        production: The current production model evaluated on the same split; None when there
            is no production model yet (the regression check then passes and says so).
        policy: The bounds; ``GatePolicy()`` defaults when None.

    Returns:
        The decision with one check per condition.
    """
    policy = policy or GatePolicy()
    checks = [
        *overall_floors(report, policy),
        *(slice_floor(report, name, policy) for name in policy.important_slices),
        *no_regression(report, production, policy),
        calibration_bound(report, policy),
        *robustness_checks(report, policy),
        *beats_baseline(report, baseline, policy),
    ]
    return GateDecision(
        model_family=report.model_family,
        passed=all(c.passed for c in checks),
        checks=checks,
        policy=policy,
    )


def enforce(decision: GateDecision) -> GateDecision:
    """Return the decision when it passed; raise ``GateFailedError`` (stop the pipeline) if not."""
    if not decision.passed:
        raise GateFailedError(decision)
    return decision


# ---- champion / challenger --------------------------------------------------------------------

CHAMPION_RULE = (
    "Among candidates that passed the gate, the highest test micro-F1 wins; candidates within "
    "{tie:.3f} micro-F1 of the best count as tied, and a tie goes to the higher macro-F1, then "
    "to the cheaper family to serve (order: {order}). If no candidate passed, there is no champion."
)
SERVING_COST_ORDER = ("linear", "xgboost", "bert", "prior")


class CandidateSummary(BaseModel):
    """One candidate's headline numbers and gate result, kept for winners and losers alike."""

    model_family: str
    micro_f1: float
    macro_f1: float
    samples_f1: float
    ece: float | None
    gate_passed: bool | None
    gate_failures: list[str] = Field(default_factory=list)
    bundle_dir: str | None = None


class ChampionChoice(BaseModel):
    """The champion (or None), every candidate's summary, and the rule that decided."""

    champion: str | None
    challengers: list[str]
    candidates: list[CandidateSummary]
    rule: str

    def candidate(self, family: str) -> CandidateSummary:
        """The summary of ``family``."""
        for c in self.candidates:
            if c.model_family == family:
                return c
        raise KeyError(
            f"{family!r} is not a candidate: {[c.model_family for c in self.candidates]}"
        )


def choose_champion(
    reports: Sequence[EvaluationReport],
    decisions: Mapping[str, GateDecision] | None = None,
    *,
    tie_tolerance: float = 0.005,
) -> ChampionChoice:
    """Pick the champion among candidates evaluated on the same test split.

    Rule: among candidates whose gate decision passed (all candidates when ``decisions`` is
    None), the highest micro-F1 wins; candidates within ``tie_tolerance`` of the best micro-F1
    are tied, and a tie goes to the higher macro-F1, then to the family that is cheaper to serve
    (``SERVING_COST_ORDER``). No passing candidate means no champion.

    Args:
        reports: One report per candidate (distinct model families).
        decisions: Gate decisions keyed by model family.
        tie_tolerance: Micro-F1 difference treated as a tie.

    Returns:
        The choice, with every candidate's metrics (the losers' too).
    """
    families = [r.model_family for r in reports]
    if len(set(families)) != len(families):
        raise ValueError(f"one report per model family please, got {families}")
    if not reports:
        raise ValueError("no candidates to choose from: evaluate at least one model family")
    decisions = decisions or {}
    missing = [f for f in families if decisions and f not in decisions]
    if missing:
        raise ValueError(
            f"no gate decision for {missing}: run trending.modelling.gate.decide on each"
        )

    summaries = [
        CandidateSummary(
            model_family=r.model_family,
            micro_f1=r.overall["micro_f1"],
            macro_f1=r.overall["macro_f1"],
            samples_f1=r.overall["samples_f1"],
            ece=r.calibration.ece if r.calibration else None,
            gate_passed=decisions[r.model_family].passed if decisions else None,
            gate_failures=[c.name for c in decisions[r.model_family].failures] if decisions else [],
            bundle_dir=r.bundle_dir,
        )
        for r in reports
    ]
    eligible = [s for s in summaries if s.gate_passed is not False]
    champion = None
    if eligible:
        best = max(s.micro_f1 for s in eligible)
        tied = [s for s in eligible if s.micro_f1 >= best - tie_tolerance]

        def cost(family: str) -> int:
            order = SERVING_COST_ORDER
            return order.index(family) if family in order else len(order)

        champion = min(tied, key=lambda s: (-s.macro_f1, cost(s.model_family))).model_family
    return ChampionChoice(
        champion=champion,
        challengers=[f for f in families if f != champion],
        candidates=summaries,
        rule=CHAMPION_RULE.format(tie=tie_tolerance, order=" < ".join(SERVING_COST_ORDER)),
    )
