"""Canary decisions as pure functions: policy and metrics snapshot in, decision and evidence out.

The controller (``serving.canary``) measures stable and canary over a window (``trending.monitoring.prom``),
hands the snapshot to :func:`decide`, writes the decision with every number behind it to the
registry event log, and moves traffic. Nothing here does I/O except :func:`load_policy`.

Checks (each compares canary with stable measured over the same window):

- ``error_rate``: canary error rate, and its increase over stable's.
- ``p95_latency``: canary p95 must stay under ``stable_p95 * ratio + slack``.
- ``genre_divergence``: Jensen-Shannon divergence (base 2, 0..1) of the per-genre prediction
  rates — a model that answers fast and without errors but tags different genres fails here.
  Two samples of one distribution differ by chance, the more so the smaller they are, so the
  limit is raised by what sampling noise alone would reach (:func:`js_noise_allowance`).
- ``mean_score_shift``: the largest per-genre shift of the mean score, beyond what chance
  between the two samples allows (:func:`mean_shift_noise_allowance`).
- ``shadow_agreement``: mean genre-set agreement (Jaccard) of canary with stable on the same
  inputs, from shadow comparisons.
- ``feedback_accuracy``: mean Jaccard of predictions against labelled feedback, canary vs stable.

A check without enough data is ``skipped`` (recorded as such); too few canary requests makes the
whole step ``hold``; a failed check means ``rollback``; all passing means ``promote`` (the next
traffic step, or full promotion after the last one).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from scipy.stats import chi2, norm

CHECK_NAMES = (
    "error_rate",
    "p95_latency",
    "genre_divergence",
    "mean_score_shift",
    "shadow_agreement",
    "feedback_accuracy",
)
Action = Literal["promote", "hold", "rollback"]
CheckStatus = Literal["pass", "fail", "skipped"]


class CanaryPolicyError(ValueError):
    """The canary policy file is missing, unreadable or invalid; the message says what to fix."""


class CanaryPolicy(BaseModel):
    """When a canary moves forward, waits, or is rolled back. Defaults suit a production service."""

    model_config = ConfigDict(extra="forbid")

    steps: list[int] = Field(
        default_factory=lambda: [10, 25, 50],
        description=(
            "Canary traffic percentages to measure at, strictly increasing, each below 100; "
            "passing the last one promotes the canary to 100 % (at 100 % no stable traffic is "
            "left to compare with)."
        ),
    )
    required_checks: list[str] = Field(
        default_factory=lambda: ["error_rate", "p95_latency", "genre_divergence"],
        description="Checks that must have data: skipped means hold, never promote.",
    )
    window_seconds: float = Field(300.0, gt=0, description="Measurement window per step.")
    settle_seconds: float = Field(
        30.0, ge=0, description="Wait after a traffic change before the window starts counting."
    )
    min_requests: int = Field(
        100, ge=1, description="Canary requests needed in a window before any judgement."
    )
    max_holds: int = Field(
        3, ge=0, description="Consecutive holds (too little traffic) before rolling back."
    )
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Canary error rate ceiling.")
    max_error_rate_increase: float = Field(
        0.01, ge=0, le=1, description="Allowed canary error rate minus stable error rate."
    )
    max_p95_latency_ratio: float = Field(1.5, ge=1, description="canary p95 / stable p95 ceiling.")
    latency_slack_seconds: float = Field(
        0.05, ge=0, description="Absolute slack on the p95 bound (tiny latencies are noisy)."
    )
    max_genre_divergence: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Jensen-Shannon divergence (base 2) of genre rates allowed beyond sampling noise."
        ),
    )
    noise_confidence: float = Field(
        0.99,
        gt=0,
        lt=1,
        description=(
            "How sure genre_divergence and mean_score_shift must be that a difference is more "
            "than chance between samples of the observed sizes before they fail."
        ),
    )
    min_genre_predictions: int = Field(
        50, ge=1, description="Predicted genre labels per side needed to judge divergence."
    )
    max_mean_score_shift: float = Field(
        0.15, ge=0, le=1, description="Largest allowed per-genre mean score shift."
    )
    min_shadow_agreement: float = Field(
        0.8, ge=0, le=1, description="Mean genre-set agreement with stable on the same inputs."
    )
    min_shadow_samples: int = Field(30, ge=1, description="Shadow comparisons needed to judge.")
    max_feedback_accuracy_drop: float = Field(
        0.05, ge=0, le=1, description="Allowed drop of feedback accuracy (mean Jaccard)."
    )
    min_feedback_samples: int = Field(30, ge=1, description="Feedback items per side to judge.")

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[int]) -> list[int]:
        if not steps:
            raise ValueError("steps is empty: give traffic percentages such as [10, 25, 50, 100]")
        if any(not 0 < s < 100 for s in steps):
            raise ValueError(
                f"every step must lie in 1..99, got {steps}; passing the last step promotes to "
                "100 % (at 100 % there is no stable traffic left to compare with)"
            )
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps must increase strictly, got {steps}")
        return steps

    @field_validator("required_checks")
    @classmethod
    def _check_required(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(CHECK_NAMES))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; known: {', '.join(CHECK_NAMES)}")
        return names

    @model_validator(mode="after")
    def _check_windows(self) -> CanaryPolicy:
        if self.settle_seconds > self.window_seconds * 10:
            raise ValueError(
                f"settle_seconds={self.settle_seconds} is more than 10 windows "
                f"({self.window_seconds} s each); shorten it"
            )
        return self


def load_policy(path: Path | None) -> CanaryPolicy:
    """Read a YAML policy file (every key optional); ``None`` gives the defaults.

    Raises:
        CanaryPolicyError: The file is missing, is not YAML, or holds invalid or unknown keys.
    """
    if path is None:
        return CanaryPolicy()
    path = Path(path)
    if not path.is_file():
        raise CanaryPolicyError(f"canary policy {path} does not exist; see policies/canary.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CanaryPolicyError(f"canary policy {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CanaryPolicyError(
            f"canary policy {path} must be a mapping of settings, got {type(data).__name__}"
        )
    try:
        return CanaryPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors()
        )
        raise CanaryPolicyError(
            f"canary policy {path} is invalid — {problems} (see policies/canary.yaml)"
        ) from None


class VersionStats(BaseModel):
    """What one version did over a window."""

    version: int
    requests: float = Field(0.0, ge=0)
    errors: float = Field(0.0, ge=0)
    p95_latency_seconds: float | None = None
    genre_counts: dict[str, float] = Field(default_factory=dict)
    mean_scores: dict[str, float] = Field(default_factory=dict)
    score_counts: dict[str, float] = Field(
        default_factory=dict, description="Scores behind each mean (titles scored)."
    )
    feedback_accuracy: float | None = None
    feedback_samples: float = 0.0

    @property
    def error_rate(self) -> float | None:
        """Errors per request, or None without requests."""
        return self.errors / self.requests if self.requests > 0 else None


class ShadowStats(BaseModel):
    """Shadow comparisons of the candidate with stable on the same inputs over a window."""

    samples: float = 0.0
    mean_agreement: float | None = None
    mean_score_delta: float | None = None


class MetricsSnapshot(BaseModel):
    """Stable and canary measured over one window."""

    window_seconds: float
    traffic_percent: int
    stable: VersionStats
    canary: VersionStats
    shadow: ShadowStats = Field(default_factory=ShadowStats)


class Check(BaseModel):
    """One comparison behind a decision."""

    name: str
    status: CheckStatus
    value: float | None
    threshold: float | None
    detail: str


class Decision(BaseModel):
    """promote / hold / rollback, why, and the evidence (every number and threshold)."""

    action: Action
    reason: str
    traffic_percent: int
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    def evidence(self, snapshot: MetricsSnapshot, policy: CanaryPolicy) -> dict:
        """Everything behind the decision, JSON-ready, for the registry's event log."""
        return {
            "action": self.action,
            "reason": self.reason,
            "traffic_percent": self.traffic_percent,
            "checks": [c.model_dump() for c in self.checks],
            "snapshot": snapshot.model_dump(),
            "policy": policy.model_dump(),
        }


def _normalise(counts: Mapping[str, float], keys: list[str]) -> list[float]:
    total = sum(max(counts.get(k, 0.0), 0.0) for k in keys)
    return [max(counts.get(k, 0.0), 0.0) / total for k in keys]


def js_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count or rate vectors by genre.

    Raises:
        ValueError: Either side sums to zero.
    """
    keys = sorted(set(p) | set(q))
    if sum(p.get(k, 0.0) for k in keys) <= 0 or sum(q.get(k, 0.0) for k in keys) <= 0:
        raise ValueError("both distributions need a positive total to compare them")
    pn, qn = _normalise(p, keys), _normalise(q, keys)
    m = [(a + b) / 2 for a, b in zip(pn, qn, strict=True)]

    def kl(x: list[float]) -> float:
        return sum(a * math.log2(a / c) for a, c in zip(x, m, strict=True) if a > 0)

    return max(0.0, min(1.0, (kl(pn) + kl(qn)) / 2))


def js_noise_allowance(n_p: float, n_q: float, categories: int, quantile: float) -> float:
    """Divergence that two samples of ``n_p`` and ``n_q`` labels from ONE distribution reach.

    For counts from the same multinomial, ``8 ln2 * JS / (1/n_p + 1/n_q)`` is asymptotically
    chi-squared with ``categories - 1`` degrees of freedom; the ``quantile`` of that,
    scaled back, is the allowance. Small samples run slightly above it (empty cells).
    """
    if categories < 2:
        return 0.0
    scale = (1 / n_p + 1 / n_q) / (8 * math.log(2))
    return float(chi2.ppf(quantile, categories - 1)) * scale


def _max_variance(mean: float) -> float:
    """The largest variance a score in [0, 1] with this mean can have: m(1 - m)."""
    m = min(max(mean, 0.0), 1.0)
    return m * (1 - m)


def mean_shift_noise_allowance(
    mean_p: float, n_p: float, mean_q: float, n_q: float, comparisons: int, confidence: float
) -> float:
    """Shift of a mean score that chance alone reaches between samples of ``n_p`` and ``n_q``.

    Scores lie in [0, 1], so a score with mean m has variance at most m(1 - m); the allowance is
    that standard error times the two-sided normal quantile, Bonferroni-corrected for testing
    ``comparisons`` genres at once. Without counts there is nothing to allow for (0).
    """
    if n_p <= 0 or n_q <= 0:
        return 0.0
    var = _max_variance(mean_p) / n_p + _max_variance(mean_q) / n_q
    z = float(norm.ppf(1 - (1 - confidence) / (2 * max(comparisons, 1))))
    return z * math.sqrt(var)


def _check_errors(policy: CanaryPolicy, s: MetricsSnapshot) -> Check:
    canary_rate = s.canary.error_rate or 0.0
    stable_rate = s.stable.error_rate or 0.0
    increase = canary_rate - stable_rate
    ok = canary_rate <= policy.max_error_rate and increase <= policy.max_error_rate_increase
    return Check(
        name="error_rate",
        status="pass" if ok else "fail",
        value=round(canary_rate, 6),
        threshold=policy.max_error_rate,
        detail=(
            f"canary {canary_rate:.2%} vs stable {stable_rate:.2%} (increase {increase:+.2%}); "
            f"limits: {policy.max_error_rate:.2%} and +{policy.max_error_rate_increase:.2%}"
        ),
    )


def _check_latency(policy: CanaryPolicy, s: MetricsSnapshot) -> Check:
    canary, stable = s.canary.p95_latency_seconds, s.stable.p95_latency_seconds
    if canary is None or stable is None or math.isnan(canary) or math.isnan(stable):
        return Check(
            name="p95_latency",
            status="skipped",
            value=canary,
            threshold=None,
            detail="no latency histogram for one side in this window",
        )
    bound = stable * policy.max_p95_latency_ratio + policy.latency_slack_seconds
    return Check(
        name="p95_latency",
        status="pass" if canary <= bound else "fail",
        value=round(canary, 6),
        threshold=round(bound, 6),
        detail=(
            f"canary p95 {canary * 1000:.1f} ms vs stable {stable * 1000:.1f} ms; bound "
            f"stable x {policy.max_p95_latency_ratio} + "
            f"{policy.latency_slack_seconds * 1000:.0f} ms"
        ),
    )


def _check_divergence(policy: CanaryPolicy, s: MetricsSnapshot) -> Check:
    n_canary, n_stable = sum(s.canary.genre_counts.values()), sum(s.stable.genre_counts.values())
    if min(n_canary, n_stable) < policy.min_genre_predictions:
        return Check(
            name="genre_divergence",
            status="skipped",
            value=None,
            threshold=policy.max_genre_divergence,
            detail=(
                f"too few predicted genres to compare (canary {n_canary:.0f}, stable "
                f"{n_stable:.0f}; need {policy.min_genre_predictions} each)"
            ),
        )
    value = js_divergence(s.canary.genre_counts, s.stable.genre_counts)
    genres = {g for g, n in (*s.canary.genre_counts.items(), *s.stable.genre_counts.items()) if n}
    noise = js_noise_allowance(n_canary, n_stable, len(genres), policy.noise_confidence)
    limit = policy.max_genre_divergence + noise
    return Check(
        name="genre_divergence",
        status="pass" if value <= limit else "fail",
        value=round(value, 6),
        threshold=round(limit, 6),
        detail=(
            f"Jensen-Shannon divergence of per-genre prediction rates {value:.3f} "
            f"(canary {n_canary:.0f} vs stable {n_stable:.0f} genre labels); limit "
            f"{policy.max_genre_divergence} + {noise:.3f} sampling-noise allowance"
        ),
    )


def _check_scores(policy: CanaryPolicy, s: MetricsSnapshot) -> Check:
    common = sorted(set(s.canary.mean_scores) & set(s.stable.mean_scores))
    if not common:
        return Check(
            name="mean_score_shift",
            status="skipped",
            value=None,
            threshold=policy.max_mean_score_shift,
            detail="no per-genre mean scores for both sides in this window",
        )
    c, st = s.canary, s.stable
    shifts = {g: c.mean_scores[g] - st.mean_scores[g] for g in common}

    def limit(g: str) -> float:
        noise = mean_shift_noise_allowance(
            c.mean_scores[g], c.score_counts.get(g, 0.0), st.mean_scores[g],
            st.score_counts.get(g, 0.0), len(common), policy.noise_confidence,
        )  # fmt: skip
        return policy.max_mean_score_shift + noise

    limits = {g: limit(g) for g in common}
    worst = max(common, key=lambda g: abs(shifts[g]) - limits[g])
    value = abs(shifts[worst])
    return Check(
        name="mean_score_shift",
        status="pass" if value <= limits[worst] else "fail",
        value=round(value, 6),
        threshold=round(limits[worst], 6),
        detail=(
            f"mean score shift {shifts[worst]:+.3f} on {worst}, the closest to its limit "
            f"{limits[worst]:.3f} ({policy.max_mean_score_shift} + sampling-noise allowance for "
            f"{c.score_counts.get(worst, 0):.0f} vs {st.score_counts.get(worst, 0):.0f} titles)"
        ),
    )


def _check_shadow(policy: CanaryPolicy, s: MetricsSnapshot) -> Check:
    agreement = s.shadow.mean_agreement
    if s.shadow.samples < policy.min_shadow_samples or agreement is None:
        return Check(
            name="shadow_agreement",
            status="skipped",
            value=agreement,
            threshold=policy.min_shadow_agreement,
            detail=(
                f"{s.shadow.samples:.0f} shadow comparisons (need {policy.min_shadow_samples})"
            ),
        )
    return Check(
        name="shadow_agreement",
        status="pass" if agreement >= policy.min_shadow_agreement else "fail",
        value=round(agreement, 6),
        threshold=policy.min_shadow_agreement,
        detail=(
            f"mean genre-set agreement with stable {agreement:.3f} over "
            f"{s.shadow.samples:.0f} shared inputs"
        ),
    )


def _check_feedback(policy: CanaryPolicy, s: MetricsSnapshot) -> Check:
    canary, stable = s.canary, s.stable
    if (
        canary.feedback_accuracy is None
        or stable.feedback_accuracy is None
        or min(canary.feedback_samples, stable.feedback_samples) < policy.min_feedback_samples
    ):
        return Check(
            name="feedback_accuracy",
            status="skipped",
            value=canary.feedback_accuracy,
            threshold=None,
            detail=(
                f"labelled feedback: canary {canary.feedback_samples:.0f}, stable "
                f"{stable.feedback_samples:.0f} (need {policy.min_feedback_samples} each)"
            ),
        )
    drop = stable.feedback_accuracy - canary.feedback_accuracy
    return Check(
        name="feedback_accuracy",
        status="pass" if drop <= policy.max_feedback_accuracy_drop else "fail",
        value=round(canary.feedback_accuracy, 6),
        threshold=round(stable.feedback_accuracy - policy.max_feedback_accuracy_drop, 6),
        detail=(
            f"feedback accuracy canary {canary.feedback_accuracy:.3f} vs stable "
            f"{stable.feedback_accuracy:.3f} (drop {drop:+.3f}, "
            f"allowed {policy.max_feedback_accuracy_drop})"
        ),
    )


def decide(policy: CanaryPolicy, snapshot: MetricsSnapshot, *, holds_so_far: int = 0) -> Decision:
    """Promote, hold or roll back the canary from one window's snapshot.

    Args:
        policy: Thresholds and step plan.
        snapshot: Stable and canary over the same window.
        holds_so_far: Consecutive holds already made at this step; past ``policy.max_holds`` a
            step that still lacks traffic is rolled back (a canary nobody can judge never ships).

    Returns:
        The decision with every check behind it.
    """
    checks = [
        _check_errors(policy, snapshot),
        _check_latency(policy, snapshot),
        _check_divergence(policy, snapshot),
        _check_scores(policy, snapshot),
        _check_shadow(policy, snapshot),
        _check_feedback(policy, snapshot),
    ]
    pct = snapshot.traffic_percent
    failed = [c for c in checks if c.status == "fail"]
    if snapshot.canary.requests < policy.min_requests:
        if holds_so_far >= policy.max_holds:
            return Decision(
                action="rollback",
                reason=(
                    f"still only {snapshot.canary.requests:.0f} canary requests after "
                    f"{holds_so_far} holds at {pct}% (need {policy.min_requests}); "
                    "not enough evidence to ship"
                ),
                traffic_percent=pct,
                checks=checks,
            )
        return Decision(
            action="hold",
            reason=(
                f"{snapshot.canary.requests:.0f} canary requests in the window, need "
                f"{policy.min_requests}; waiting another window"
            ),
            traffic_percent=pct,
            checks=checks,
        )
    if failed:
        names = "; ".join(f"{c.name} ({c.detail})" for c in failed)
        return Decision(
            action="rollback", reason=f"failed: {names}", traffic_percent=pct, checks=checks
        )
    missing = [c.name for c in checks if c.status == "skipped" and c.name in policy.required_checks]
    if missing:
        if holds_so_far >= policy.max_holds:
            return Decision(
                action="rollback",
                reason=f"required checks {missing} still without data after {holds_so_far} holds",
                traffic_percent=pct,
                checks=checks,
            )
        return Decision(
            action="hold",
            reason=f"required checks without enough data yet: {', '.join(missing)}",
            traffic_percent=pct,
            checks=checks,
        )
    skipped = [c.name for c in checks if c.status == "skipped"]
    reason = f"all checks passed at {pct}%"
    if skipped:
        reason += f" (skipped for lack of data: {', '.join(skipped)})"
    return Decision(action="promote", reason=reason, traffic_percent=pct, checks=checks)


def next_step(policy: CanaryPolicy, current_percent: int) -> int | None:
    """The traffic step after ``current_percent``, or None when the next move is promotion."""
    later = [s for s in policy.steps if s > current_percent]
    return later[0] if later else None


# ---- the local traffic split (written by the controller and the CLI, read by the router) ----


class Upstream(BaseModel):
    """A model server the router can send traffic to."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://127.0.0.1:8081")


class TrafficSplit(BaseModel):
    """Who gets which share of the traffic; the router re-reads it on every change."""

    model_config = ConfigDict(extra="forbid")

    model: str
    stable: Upstream
    canary: Upstream | None = None
    canary_percent: int = Field(0, ge=0, le=100)
    shadow: Upstream | None = None
    shadow_percent: int = Field(
        100, ge=0, le=100, description="Share of stable-served requests mirrored to the shadow."
    )

    @model_validator(mode="after")
    def _check(self) -> TrafficSplit:
        if self.canary is None and self.canary_percent:
            raise ValueError(f"canary_percent={self.canary_percent} but no canary upstream is set")
        for side in (self.canary, self.shadow):
            if side is not None and side.version == self.stable.version:
                raise ValueError(
                    f"version {side.version} is the stable version; canary and shadow must differ"
                )
        return self


def write_split(path: Path, split: TrafficSplit) -> None:
    """Replace the split file atomically (write a sibling, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(split.model_dump_json(indent=2))
    tmp.replace(path)


def read_split(path: Path) -> TrafficSplit:
    """Read and validate the split file.

    Raises:
        CanaryPolicyError: Missing or invalid (the message names the file and the problem).
    """
    path = Path(path)
    if not path.is_file():
        raise CanaryPolicyError(
            f"traffic split file {path} does not exist; start the local canary first "
            "(`trending deploy <version> --canary 10 --local` or run_local_canary)"
        )
    try:
        return TrafficSplit.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise CanaryPolicyError(f"traffic split file {path} is invalid: {exc}") from None
