"""The router's Prometheus metrics, built from the families declared in trending.monitoring.metrics.

Every answer is counted under the version that produced it, with the names and buckets the model
server uses, so Prometheus compares stable with canary (docs/canary.md); feedback, shadow
comparisons and refused evidence posts are the router's own.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry

from trending.monitoring.metrics import (
    ERRORS,
    FEEDBACK_GENRES,
    FEEDBACK_JACCARD,
    PREDICTION_SCORE,
    PREDICTIONS,
    REQUEST_DURATION,
    REQUESTS,
    ROUTER_REFUSED,
    SHADOW_AGREEMENT,
    SHADOW_COMPARISONS,
    SHADOW_SCORE_DELTA,
)
from trending.monitoring.online_quality import FeedbackCounts
from trending.rollout.shadow import ShadowComparisonError, compare_predictions

log = logging.getLogger("trending.router")


class RouterMetrics:
    """Per-version metrics of everything the router forwards (its own registry)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = REQUESTS.counter(r)
        self.duration = REQUEST_DURATION.histogram(r)
        self.predictions = PREDICTIONS.counter(r)
        self.scores = PREDICTION_SCORE.histogram(r)
        self.errors = ERRORS.counter(r)
        self.feedback = FEEDBACK_JACCARD.histogram(r)
        self.feedback_genres = FEEDBACK_GENRES.counter(r)
        self.shadow_agreement = SHADOW_AGREEMENT.histogram(r)
        self.shadow_delta = SHADOW_SCORE_DELTA.histogram(r)
        self.shadow_results = SHADOW_COMPARISONS.counter(r)
        self.refused = ROUTER_REFUSED.counter(r)

    def observe_answer(self, model: str, version: int, body: Any) -> list[list[str]]:
        """Count the genres and scores of a V1 answer; returns the genre sets."""
        v = str(version)
        sets: list[list[str]] = []
        for p in (body or {}).get("predictions", []) if isinstance(body, dict) else []:
            if not isinstance(p, dict):
                continue
            genres = [str(g) for g in p.get("genres", [])]
            sets.append(genres)
            for g in genres:
                self.predictions.labels(model, v, g).inc()
            for g, s in (p.get("scores") or {}).items():
                self.scores.labels(model, v, str(g)).observe(float(s))
        return sets

    def observe_shadow(self, model: str, version: int, stable: Any, shadow: Any) -> None:
        """Compare a shadow answer with the stable one and record the outcome."""
        v = str(version)
        try:
            result = compare_predictions(stable, shadow)
        except ShadowComparisonError as exc:
            log.warning("shadow %s answer not comparable: %s", v, exc)
            self.shadow_results.labels(model, v, "incomparable").inc()
            return
        self.shadow_agreement.labels(model, v).observe(result.agreement)
        self.shadow_delta.labels(model, v).observe(result.score_delta)
        self.shadow_results.labels(model, v, "agree" if result.agreement == 1 else "differ").inc()

    def observe_feedback(
        self, model: str, version: int, predicted: list[str], labelled: list[str]
    ) -> None:
        """Count one title's genre decisions against its labels (the online micro-F1)."""
        for outcome, count in FeedbackCounts.outcomes(predicted, labelled).items():
            self.feedback_genres.labels(model, str(version), outcome).inc(count)

    def refuse(self, endpoint: str, reason: str) -> None:
        """Count an evidence post the router did not act on."""
        self.refused.labels(endpoint, reason).inc()
