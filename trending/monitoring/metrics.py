"""Serving metrics (Prometheus): the names the Helm chart's rules and the canary controller read.

The metric names and labels are a contract; change them only together with
``charts/trending/files/trending.rules.yml``, the dashboards and the canary controller.

- ``trending_requests_total{model,version,protocol,code}``: every inference request; ``code`` is
  the HTTP status (gRPC status codes are mapped to their HTTP equivalents), ``protocol`` is
  ``v1``, ``v2`` or ``grpc-v2``.
- ``trending_request_duration_seconds{model,version}``: request latency as the server sees it.
- ``trending_predictions_total{model,version,genre}``: genres predicted (above threshold).
- ``trending_prediction_score{model,version,genre}``: score distribution per genre.
- ``trending_instances_per_request{model,version}``: batch size as the client sent it.
- ``trending_model_batch_size{model,version}``: titles per model call, after dynamic batching
  joined concurrent requests (equal to the request sizes when batching is off).
- ``trending_input_chars{model,version}``: characters of model input text per instance.
- ``trending_errors_total{model,version,kind}``: failed requests by kind.
- ``trending_payload_log_dropped_total{model,version}``: payload-log events not delivered.
- ``trending_non_finite_values_total{model,version,where,kind}``: NaN (``kind="nan"``) or
  Infinity (``kind="inf"``) among a model's numeric inputs (``where="input"``) or its scores
  (``where="prediction"``); alert ``NonFiniteValues``.

The local router (``serving.router``) exports the first four per version that answered, plus:

- ``trending_feedback_jaccard{model,version}``: agreement of predictions with labelled feedback.
- ``trending_feedback_genres_total{model,version,outcome}``: genre decisions judged by labelled
  feedback (``tp``, ``fp``, ``fn``): the online micro-F1 per version
  (trending.monitoring.online_quality).
- ``trending_shadow_agreement{model,version}``: genre-set agreement of the shadow with stable.
- ``trending_shadow_score_delta{model,version}``: mean absolute score difference shadow vs stable.
- ``trending_shadow_comparisons_total{model,version,result}``: shadow comparisons by result.
- ``trending_router_refused_total{endpoint,reason}``: evidence posts not acted on
  (``unauthenticated``, ``invalid``, ``unknown_title``, ``duplicate``).

On the cluster, the drift service (``serving.drift``) takes labelled feedback at ``/feedback``
(trending.monitoring.feedback) and exports:

- ``trending_feedback_micro_f1{model,version}``: micro-F1 over the version's last labelled titles
  (alert ``PerformanceDegraded``).
- ``trending_feedback_window_titles{model,version}``: labelled titles in that window.
- ``trending_feedback_posts_total{outcome}``: feedback posts by outcome.

Every family (name, help, labels, buckets) is declared once, below, as a :class:`MetricFamily`;
the model server and the router build their metrics from these declarations. Nothing registers at
import: build one ``ServingMetrics`` per process (in ``main``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import prometheus_client.metrics
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.012, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
INSTANCE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CHAR_BUCKETS = (50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600)
SCORE_DELTA_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_VERSION = ("model", "version")


@dataclass(frozen=True)
class MetricFamily:
    """One metric family as exported: name, help text, label names and (histograms) buckets."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None = None

    def counter(self, registry: CollectorRegistry) -> Counter:
        """A ``Counter`` of this family, registered in ``registry``."""
        return Counter(self.name, self.documentation, self.labels, registry=registry)

    def gauge(self, registry: CollectorRegistry) -> Gauge:
        """A ``Gauge`` of this family, registered in ``registry``."""
        return Gauge(self.name, self.documentation, self.labels, registry=registry)

    def histogram(self, registry: CollectorRegistry) -> Histogram:
        """A ``Histogram`` of this family with its buckets, registered in ``registry``."""
        if self.buckets is None:
            raise ValueError(f"{self.name} is declared without buckets: it is not a histogram")
        return Histogram(
            self.name, self.documentation, self.labels, buckets=self.buckets, registry=registry
        )


REQUESTS = MetricFamily(
    "trending_requests_total",
    "Inference requests by the version that answered, protocol and HTTP status code.",
    (*_VERSION, "protocol", "code"),
)
REQUEST_DURATION = MetricFamily(
    "trending_request_duration_seconds",
    "Inference request latency (model server: in the server; router: the upstream round trip).",
    _VERSION,
    LATENCY_BUCKETS,
)
PREDICTIONS = MetricFamily(
    "trending_predictions_total", "Genres predicted above their threshold.", (*_VERSION, "genre")
)
PREDICTION_SCORE = MetricFamily(
    "trending_prediction_score", "Predicted score per genre.", (*_VERSION, "genre"), SCORE_BUCKETS
)
INSTANCES_PER_REQUEST = MetricFamily(
    "trending_instances_per_request",
    "Instances (titles) per inference request.",
    _VERSION,
    INSTANCE_BUCKETS,
)
MODEL_BATCH_SIZE = MetricFamily(
    "trending_model_batch_size",
    "Titles per model call (after dynamic batching).",
    _VERSION,
    INSTANCE_BUCKETS,
)
INPUT_CHARS = MetricFamily(
    "trending_input_chars",
    "Characters of model input text per instance.",
    _VERSION,
    CHAR_BUCKETS,
)
ERRORS = MetricFamily(
    "trending_errors_total", "Failed inference requests by kind.", (*_VERSION, "kind")
)
PAYLOAD_LOG_DROPPED = MetricFamily(
    "trending_payload_log_dropped_total",
    "Payload-log events dropped (queue full or sink unreachable).",
    _VERSION,
)
NON_FINITE_VALUES = MetricFamily(
    "trending_non_finite_values_total",
    "NaN or Infinity values among a model's numeric inputs or its predicted scores.",
    (*_VERSION, "where", "kind"),
)
FEEDBACK_JACCARD = MetricFamily(
    "trending_feedback_jaccard",
    "Agreement (Jaccard) of predictions with labelled feedback.",
    _VERSION,
    SCORE_BUCKETS,
)
FEEDBACK_GENRES = MetricFamily(
    "trending_feedback_genres_total",
    "Genre decisions judged by labelled feedback: tp (predicted, labelled), fp, fn.",
    (*_VERSION, "outcome"),
)
FEEDBACK_MICRO_F1 = MetricFamily(
    "trending_feedback_micro_f1",
    "Micro-F1 of a version's predictions over its last labelled feedback titles (rolling window).",
    _VERSION,
)
FEEDBACK_WINDOW_TITLES = MetricFamily(
    "trending_feedback_window_titles",
    "Labelled titles in the rolling micro-F1 window of a version.",
    _VERSION,
)
FEEDBACK_POSTS = MetricFamily(
    "trending_feedback_posts_total",
    "Feedback posts by outcome: counted, duplicate, unauthenticated, invalid, unknown_title, off.",
    ("outcome",),
)
SHADOW_AGREEMENT = MetricFamily(
    "trending_shadow_agreement",
    "Genre-set agreement (Jaccard) of the shadow with stable on the same input.",
    _VERSION,
    SCORE_BUCKETS,
)
SHADOW_SCORE_DELTA = MetricFamily(
    "trending_shadow_score_delta",
    "Mean absolute score difference of the shadow vs stable on the same input.",
    _VERSION,
    SCORE_DELTA_BUCKETS,
)
SHADOW_COMPARISONS = MetricFamily(
    "trending_shadow_comparisons_total",
    "Shadow comparisons by result (agree, differ, incomparable, error).",
    (*_VERSION, "result"),
)
ROUTER_REFUSED = MetricFamily(
    "trending_router_refused_total",
    "Evidence posts (feedback, shadow events) the router did not act on, by endpoint and reason.",
    ("endpoint", "reason"),
)


class ServingMetrics:
    """The serving metrics of one model version, bound to its labels.

    Args:
        model: The model name (``model`` label).
        version: The served version (``version`` label).
        genres: The genre vocabulary, in score column order.
        registry: Where to register; the default is the process registry that KServe's
            ``/metrics`` exports. Tests pass a fresh ``CollectorRegistry``.
    """

    def __init__(
        self,
        model: str,
        version: str,
        genres: Sequence[str],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.model, self.version, self.genres = model, version, list(genres)
        self.requests = REQUESTS.counter(registry)
        self.duration = REQUEST_DURATION.histogram(registry)
        self.predictions = PREDICTIONS.counter(registry)
        self.scores = GenreScoreHistogram.of(
            PREDICTION_SCORE, {"model": model, "version": version}, self.genres
        )
        registry.register(self.scores)
        self.instances = INSTANCES_PER_REQUEST.histogram(registry)
        self.model_batch = MODEL_BATCH_SIZE.histogram(registry)
        self.input_chars = INPUT_CHARS.histogram(registry)
        self.errors = ERRORS.counter(registry)
        self.payload_log_dropped = PAYLOAD_LOG_DROPPED.counter(registry)
        self.non_finite = NON_FINITE_VALUES.counter(registry)
        # Children bound once: a labels() lookup per observation costs more than the observation.
        self._duration = self.duration.labels(model, version)
        self._instances = self.instances.labels(model, version)
        self._model_batch = self.model_batch.labels(model, version)
        self._input_chars = self.input_chars.labels(model, version)
        self._dropped = self.payload_log_dropped.labels(model, version)
        self._predicted = [self.predictions.labels(model, version, g) for g in self.genres]
        self._requests: dict[tuple[str, str], Counter] = {}

    def record_request(self, protocol: str, code: int | str, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (protocol, str(code))
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(self.model, self.version, *key)
        child.inc()
        self._duration.observe(seconds)

    def record_error(self, kind: str) -> None:
        """Count one failed request of ``kind`` (e.g. ``invalid_input``, ``internal``)."""
        self.errors.labels(self.model, self.version, kind).inc()

    def record_payload_log_dropped(self, count: int = 1) -> None:
        """Count payload-log events that were not delivered."""
        self._dropped.inc(count)

    def record_non_finite(self, where: str, values: np.ndarray) -> int:
        """Count NaN and Infinity among ``values`` (``where``: ``input`` or ``prediction``).

        Returns:
            How many non-finite values there were (0 in a healthy model).
        """
        array = np.asarray(values, dtype=np.float64)
        nan = int(np.isnan(array).sum())
        inf = int(np.isinf(array).sum())
        if nan:
            self.non_finite.labels(self.model, self.version, where, "nan").inc(nan)
        if inf:
            self.non_finite.labels(self.model, self.version, where, "inf").inc(inf)
        return nan + inf

    def record_model_call(self, titles: int) -> None:
        """Record one model call over ``titles`` titles (one or more requests' worth)."""
        self._model_batch.observe(titles)

    def record_batch(
        self, scores: np.ndarray, chosen: np.ndarray, input_chars: Sequence[int]
    ) -> None:
        """Record one request's predictions.

        Args:
            scores: Scores, shape (instances, genres), columns in ``genres`` order.
            chosen: Multi-hot predictions of the same shape.
            input_chars: Characters of model input text per instance.
        """
        self._instances.observe(len(input_chars))
        for chars in input_chars:
            self._input_chars.observe(chars)
        for g, count in enumerate(np.asarray(chosen).sum(axis=0).tolist()):
            if count:
                self._predicted[g].inc(count)
        self.record_non_finite("prediction", scores)
        self.scores.observe(scores)


class GenreScoreHistogram:
    """One Prometheus histogram per genre, updated a whole score matrix at a time.

    Exports exactly what a ``prometheus_client.Histogram`` with a ``genre`` label would (same
    samples, bucket counts and sums, ``_created`` unless disabled) but records a request with a
    few numpy operations instead of one ``observe()`` per genre and title (19 per title).

    Args:
        name: The metric name.
        documentation: Its help text.
        labels: The constant labels of every series (``model``, ``version``).
        genres: The ``genre`` label values, in score column order.
        buckets: Upper bounds, ascending; ``+Inf`` is added.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: dict[str, str],
        genres: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        self.name, self.documentation = name, documentation
        self._labels = [{**labels, "genre": g} for g in genres]
        self._bounds = np.array([*buckets, float("inf")], dtype=np.float64)
        self._le = [floatToGoString(b) for b in self._bounds]
        self._offsets = np.arange(len(genres)) * len(self._bounds)  # genre g's first cell
        self._counts = np.zeros((len(genres), len(self._bounds)), dtype=np.int64)
        self._sums = np.zeros(len(genres), dtype=np.float64)
        self._lock = threading.Lock()
        self._created = time.time()

    @classmethod
    def of(
        cls, family: MetricFamily, labels: dict[str, str], genres: Sequence[str]
    ) -> GenreScoreHistogram:
        """The histogram of a declared family (its name, help and buckets) for one version."""
        if family.buckets is None or family.labels != (*labels, "genre"):
            raise ValueError(
                f"{family.name} must be a histogram labelled {(*labels, 'genre')}, "
                f"declared with {family.labels}"
            )
        return cls(family.name, family.documentation, labels, genres, family.buckets)

    def observe(self, scores: np.ndarray) -> None:
        """Count each score of a (titles, genres) matrix in its genre's histogram."""
        rows = np.asarray(scores, dtype=np.float64).reshape(-1, len(self._labels))
        width = len(self._bounds)
        # The first bucket whose bound is >= the score, as Histogram.observe picks it; NaN
        # scores land past the last bucket and are counted in no bucket (as there).
        bucket = np.searchsorted(self._bounds, rows, side="left")
        cell = (self._offsets + bucket)[bucket < width]
        counts = np.bincount(cell, minlength=self._counts.size).reshape(self._counts.shape)
        with self._lock:
            self._counts += counts
            for row in rows:  # row by row: the sums add up in the same order as observe()'s
                self._sums += row

    def describe(self) -> list[Metric]:
        """The metric's name and type, for the registry's duplicate check."""
        return [Metric(self.name, self.documentation, "histogram")]

    def collect(self) -> Iterator[Metric]:
        """The histograms as ``prometheus_client.Histogram`` exports them."""
        with self._lock:
            counts, sums = self._counts.cumsum(axis=1).astype(np.float64), self._sums.copy()
        metric = Metric(self.name, self.documentation, "histogram")
        created = getattr(prometheus_client.metrics, "_use_created", True)
        for labels, cumulative, total in zip(
            self._labels, counts.tolist(), sums.tolist(), strict=True
        ):
            for le, count in zip(self._le, cumulative, strict=True):
                metric.add_sample(f"{self.name}_bucket", {**labels, "le": le}, count)
            metric.add_sample(f"{self.name}_count", labels, cumulative[-1])
            metric.add_sample(f"{self.name}_sum", labels, total)
            if created:
                metric.add_sample(f"{self.name}_created", labels, self._created)
        yield metric
