"""Online quality from labelled feedback, compared with the offline test score of the same version.

The router matches each labelled feedback with the genres the answering version predicted and
counts genre decisions per version: true positives (predicted and labelled), false positives
(predicted, not labelled) and false negatives (labelled, not predicted), in
``trending_feedback_genres_total{model,version,outcome}``. Their micro-F1, ``2TP / (2TP + FP +
FN)``, is the same statistic as the offline test micro-F1 in the bundle manifest
(``metrics.test.micro_f1``), so the two can be compared directly.

A canary whose online micro-F1 falls below its offline micro-F1 by more than ``margin`` plus a
sampling allowance is flagged: either the offline test set no longer represents the traffic, or
serving differs from training (skew). Too few labelled decisions give ``insufficient``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

# The Prometheus query of the online micro-F1 per version (docs/monitoring.md).
ONLINE_MICRO_F1_QUERY = (
    '2 * sum by (model, version) (trending_feedback_genres_total{outcome="tp"}) / ('
    '2 * sum by (model, version) (trending_feedback_genres_total{outcome="tp"}) + '
    'sum by (model, version) (trending_feedback_genres_total{outcome=~"fp|fn"}))'
)
FEEDBACK_OUTCOMES = ("tp", "fp", "fn")


class FeedbackCounts(BaseModel):
    """Genre decisions of one version judged by labelled feedback."""

    tp: int = Field(0, ge=0)
    fp: int = Field(0, ge=0)
    fn: int = Field(0, ge=0)

    @classmethod
    def of(cls, pairs: Iterable[tuple[Iterable[str], Iterable[str]]]) -> FeedbackCounts:
        """Counts over (predicted genres, labelled genres) pairs."""
        counts = cls()
        for predicted, labelled in pairs:
            counts = counts.add(predicted, labelled)
        return counts

    @staticmethod
    def outcomes(predicted: Iterable[str], labelled: Iterable[str]) -> dict[str, int]:
        """TP, FP and FN of one title's prediction against its labels."""
        p, t = set(predicted), set(labelled)
        return {"tp": len(p & t), "fp": len(p - t), "fn": len(t - p)}

    def add(self, predicted: Iterable[str], labelled: Iterable[str]) -> FeedbackCounts:
        """These counts plus one title's outcomes."""
        o = self.outcomes(predicted, labelled)
        return FeedbackCounts(tp=self.tp + o["tp"], fp=self.fp + o["fp"], fn=self.fn + o["fn"])

    @property
    def decisions(self) -> int:
        """Genre decisions that count towards micro-F1 (2TP + FP + FN is its denominator)."""
        return 2 * self.tp + self.fp + self.fn

    @property
    def micro_f1(self) -> float | None:
        """Micro-F1 over the counted decisions, None without any."""
        return 2 * self.tp / self.decisions if self.decisions else None


class OfflineOnlineCheck(BaseModel):
    """Offline test micro-F1 of a version against its online micro-F1 from feedback."""

    version: int
    status: Literal["pass", "fail", "insufficient"]
    offline_micro_f1: float | None
    online_micro_f1: float | None
    gap: float | None = Field(None, description="offline - online (positive: worse online)")
    allowed_gap: float | None = None
    labelled_decisions: int
    message: str


def offline_micro_f1(manifest_metrics: Mapping[str, Any]) -> float | None:
    """The offline test micro-F1 in a bundle manifest's metrics (``metrics.test.micro_f1``)."""
    test = manifest_metrics.get("test") if isinstance(manifest_metrics, Mapping) else None
    value = test.get("micro_f1") if isinstance(test, Mapping) else None
    return float(value) if isinstance(value, int | float) else None


def sampling_allowance(online: float, decisions: int, z: float = 2.0) -> float:
    """``z`` standard errors of a proportion-like score measured on ``decisions`` decisions."""
    if decisions <= 0:
        return math.inf
    return z * math.sqrt(max(online * (1 - online), 0.0) / decisions)


def compare_offline_online(
    version: int,
    offline: float | None,
    online: FeedbackCounts,
    *,
    margin: float = 0.05,
    min_decisions: int = 100,
    z: float = 2.0,
) -> OfflineOnlineCheck:
    """Flag a version whose online micro-F1 is below its offline one by more than allowed.

    Args:
        version: The registry version.
        offline: Its offline test micro-F1 (``offline_micro_f1(manifest.metrics)``).
        online: Its feedback counts.
        margin: The gap offline - online tolerated beyond sampling noise.
        min_decisions: Fewer labelled decisions (2TP + FP + FN) give ``insufficient``.
        z: Standard errors of sampling allowance added to ``margin``.
    """
    score = online.micro_f1
    n = online.decisions
    if offline is None:
        return OfflineOnlineCheck(
            version=version,
            status="insufficient",
            offline_micro_f1=None,
            online_micro_f1=score,
            labelled_decisions=n,
            message=f"version {version} has no offline test micro-F1 in its manifest",
        )
    if score is None or n < min_decisions:
        return OfflineOnlineCheck(
            version=version,
            status="insufficient",
            offline_micro_f1=offline,
            online_micro_f1=score,
            labelled_decisions=n,
            message=f"{n} labelled genre decisions for version {version}; {min_decisions} needed",
        )
    gap = offline - score
    allowed = margin + sampling_allowance(score, n, z)
    status: Literal["pass", "fail"] = "fail" if gap > allowed else "pass"
    return OfflineOnlineCheck(
        version=version,
        status=status,
        offline_micro_f1=round(offline, 6),
        online_micro_f1=round(score, 6),
        gap=round(gap, 6),
        allowed_gap=round(allowed, 6),
        labelled_decisions=n,
        message=(
            f"version {version}: online micro-F1 {score:.3f} vs offline {offline:.3f} "
            f"(gap {gap:+.3f}, allowed {allowed:.3f} on {n} decisions)"
            + ("" if status == "pass" else ": offline no longer predicts online quality")
        ),
    )


def counts_from_samples(samples: Mapping[tuple[str, str], float]) -> dict[str, FeedbackCounts]:
    """Per-version counts from ``{(version, outcome): value}`` samples of the counter family."""
    by_version: dict[str, dict[str, int]] = {}
    for (version, outcome), value in samples.items():
        if outcome in FEEDBACK_OUTCOMES:
            by_version.setdefault(version, {})[outcome] = int(value)
    return {v: FeedbackCounts(**c) for v, c in by_version.items()}
