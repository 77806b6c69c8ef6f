"""The canary checks: what stable and canary did over a window, the statistics, one check each.

Each check compares canary with stable measured over the same window:

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

A check without enough data is ``skipped``; the policy module turns the checks into a decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field
from scipy.stats import chi2, norm

if TYPE_CHECKING:  # the policy module imports this one; at run time only attributes are read
    from trending.rollout.canary.policy import CanaryPolicy

CHECK_NAMES = (
    "error_rate",
    "p95_latency",
    "genre_divergence",
    "mean_score_shift",
    "shadow_agreement",
    "feedback_accuracy",
)
CheckStatus = Literal["pass", "fail", "skipped"]


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
            c.mean_scores[g],
            c.score_counts.get(g, 0.0),
            st.mean_scores[g],
            st.score_counts.get(g, 0.0),
            len(common),
            policy.noise_confidence,
        )
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


def run_checks(policy: CanaryPolicy, snapshot: MetricsSnapshot) -> list[Check]:
    """Every check, in ``CHECK_NAMES`` order, on one window's snapshot."""
    return [
        _check_errors(policy, snapshot),
        _check_latency(policy, snapshot),
        _check_divergence(policy, snapshot),
        _check_scores(policy, snapshot),
        _check_shadow(policy, snapshot),
        _check_feedback(policy, snapshot),
    ]
