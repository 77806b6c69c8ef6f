"""Read canary evidence from Prometheus over its HTTP API (``GET /api/v1/query``).

:func:`collect_snapshot` asks for stable and canary over the same window and the same evaluation
time and returns a :class:`trending.rollout.canary.MetricsSnapshot`. Metric names are those the predictor
and the local router both export (see docs/canary.md):

- ``trending_requests_total{model,version,protocol,code}``
- ``trending_request_duration_seconds_bucket{model,version,le}``
- ``trending_predictions_total{model,version,genre}``
- ``trending_prediction_score{model,version,genre}`` (histogram)
- ``trending_feedback_jaccard{model,version}`` (histogram; labelled feedback)
- ``trending_shadow_agreement{model,version}``, ``trending_shadow_score_delta{model,version}``
  (histograms; version = the shadowed candidate)
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import httpx

from trending.rollout.canary import MetricsSnapshot, ShadowStats, VersionStats

_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query; the message says which and why."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: dict[str, str]
    value: float


class PrometheusClient:
    """A small client for instant queries."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        """Connect lazily to ``base_url`` (e.g. ``http://127.0.0.1:9090``).

        Raises:
            ValueError: ``base_url`` is not an http(s) URL.
        """
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        """Evaluate an instant query; ``at`` is a Unix time (default: now).

        Raises:
            PrometheusError: Unreachable, a non-JSON answer, or a query error.
        """
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            response = self._client.get("/api/v1/query", params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.base_url} ({exc}); check the URL "
                "(--prometheus_url / TRENDING_PROMETHEUS_URL) and that it is running"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self.base_url} answered {response.status_code} with non-JSON "
                f"for {expr!r}: {response.text[:200]}"
            ) from None
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused {expr!r}: {body.get('errorType')}: {body.get('error')}"
            )
        data = body["data"]
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} gave a {data['resultType']}, expected a vector")
        return [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]

    def scalar(self, expr: str, *, at: float | None = None) -> float | None:
        """The single value of a query, None when it is empty or NaN."""
        samples = self.query(expr, at=at)
        if not samples:
            return None
        value = samples[0].value
        return None if math.isnan(value) else value

    def by_label(self, expr: str, label: str, *, at: float | None = None) -> dict[str, float]:
        """``{label value: value}`` of a vector query, NaN entries left out."""
        return {
            s.labels.get(label, ""): s.value
            for s in self.query(expr, at=at)
            if not math.isnan(s.value)
        }


def _selector(model: str, version: int, extra: dict[str, str]) -> str:
    labels = {"model": model, "version": str(version), **extra}
    for name in labels:
        if not _LABEL_RE.match(name):
            raise ValueError(f"invalid Prometheus label name {name!r}")
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _range(window_seconds: float) -> str:
    return f"{max(1, round(window_seconds))}s"


def version_stats(
    client: PrometheusClient,
    model: str,
    version: int,
    window_seconds: float,
    *,
    at: float,
    extra_labels: dict[str, str] | None = None,
) -> VersionStats:
    """Requests, errors, p95, genre counts, mean scores and feedback of one version."""
    sel = _selector(model, version, extra_labels or {})
    w = _range(window_seconds)
    requests = client.scalar(f"sum(increase(trending_requests_total{{{sel}}}[{w}]))", at=at)
    errors = client.scalar(
        f'sum(increase(trending_requests_total{{{sel},code!~"2.."}}[{w}]))', at=at
    )
    p95 = client.scalar(
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(trending_request_duration_seconds_bucket{{{sel}}}[{w}])))",
        at=at,
    )
    genres = client.by_label(
        f"sum by (genre) (increase(trending_predictions_total{{{sel}}}[{w}]))", "genre", at=at
    )
    score_sums = client.by_label(
        f"sum by (genre) (increase(trending_prediction_score_sum{{{sel}}}[{w}]))", "genre", at=at
    )
    score_counts = client.by_label(
        f"sum by (genre) (increase(trending_prediction_score_count{{{sel}}}[{w}]))", "genre", at=at
    )
    fb_n = client.scalar(f"sum(increase(trending_feedback_jaccard_count{{{sel}}}[{w}]))", at=at)
    fb_sum = client.scalar(f"sum(increase(trending_feedback_jaccard_sum{{{sel}}}[{w}]))", at=at)
    return VersionStats(
        version=version,
        requests=max(requests or 0.0, 0.0),
        errors=max(errors or 0.0, 0.0),
        p95_latency_seconds=p95,
        genre_counts={g: v for g, v in genres.items() if g and v > 0},
        mean_scores={
            g: score_sums[g] / n for g, n in score_counts.items() if g and n > 0 and g in score_sums
        },
        score_counts={g: n for g, n in score_counts.items() if g and n > 0},
        feedback_accuracy=(fb_sum / fb_n) if fb_n and fb_sum is not None else None,
        feedback_samples=fb_n or 0.0,
    )


def shadow_stats(
    client: PrometheusClient,
    model: str,
    version: int,
    window_seconds: float,
    *,
    at: float,
    extra_labels: dict[str, str] | None = None,
) -> ShadowStats:
    """Shadow comparisons of ``version`` (the candidate) with stable over the window."""
    sel = _selector(model, version, extra_labels or {})
    w = _range(window_seconds)
    n = client.scalar(f"sum(increase(trending_shadow_agreement_count{{{sel}}}[{w}]))", at=at)
    agree = client.scalar(f"sum(increase(trending_shadow_agreement_sum{{{sel}}}[{w}]))", at=at)
    delta = client.scalar(f"sum(increase(trending_shadow_score_delta_sum{{{sel}}}[{w}]))", at=at)
    if not n:
        return ShadowStats()
    return ShadowStats(
        samples=n,
        mean_agreement=agree / n if agree is not None else None,
        mean_score_delta=delta / n if delta is not None else None,
    )


def collect_snapshot(
    client: PrometheusClient,
    *,
    model: str,
    stable_version: int,
    canary_version: int,
    traffic_percent: int,
    window_seconds: float,
    at: float | None = None,
    extra_labels: dict[str, str] | None = None,
) -> MetricsSnapshot:
    """Stable and canary over the same window ending at ``at`` (default: now).

    Args:
        client: The Prometheus client.
        model: Model name (the ``model`` label).
        stable_version: The production version.
        canary_version: The canary version.
        traffic_percent: The canary's share during the window (recorded in the evidence).
        window_seconds: How far back to look.
        at: Evaluation time (Unix seconds).
        extra_labels: More label matchers, e.g. ``{"job": "trending-router"}``.

    Raises:
        PrometheusError: Prometheus unreachable or a query failed.
    """
    at = time.time() if at is None else at
    kwargs = {"at": at, "extra_labels": extra_labels}
    return MetricsSnapshot(
        window_seconds=window_seconds,
        traffic_percent=traffic_percent,
        stable=version_stats(client, model, stable_version, window_seconds, **kwargs),
        canary=version_stats(client, model, canary_version, window_seconds, **kwargs),
        shadow=shadow_stats(client, model, canary_version, window_seconds, **kwargs),
    )
