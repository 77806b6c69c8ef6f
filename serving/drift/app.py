"""The drift service's HTTP app: receives KServe logger CloudEvents and exports drift gauges.

The predictor's payload logger POSTs each request and each response as a CloudEvent (binary or
structured mode) with ``ce-type`` ``org.kubeflow.serving.inference.request`` or ``.response``,
``ce-inferenceservicename`` and ``ce-modelversion``; bodies are V1 JSON. A background thread
scores every window with new rows each ``interval`` seconds (``trending.monitoring.drift.DriftMonitor``).

It also takes labelled feedback on the cluster (``POST /feedback``, docs/monitoring.md): each
response event's predictions that carry a ``title_id`` are remembered, and a client that later
learns a title's true genres posts them with ``Authorization: Bearer <TRENDING_FEEDBACK_TOKEN>``
(a token of its own, not the predictors'). Each (title, client) is counted once, and the version
that answered gets a rolling micro-F1 (``trending_feedback_micro_f1``, alert
``PerformanceDegraded``). The parsing, matching and scoring are ``trending.monitoring.feedback``,
the same core as the local router's ``/feedback``.

Only the predictors may feed it: with a token configured, an event without
``Authorization: Bearer <token>`` (the predictors' payload logger sends it) is refused with 401
and counted as ``trending_drift_events_total{outcome="unauthorized"}``.
KServe's own logger (the agent sidecar) cannot send such a header; where it feeds the service,
the chart's NetworkPolicy is what keeps other pods out. Bodies are read under a size cap and
must be strict JSON (``trending.modelling.bundle.inference.parse_json_strictly``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import from_http
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serving.predictor.http import DEFAULT_BODY_TIMEOUT_SECONDS, harden
from trending.modelling.bundle.inference import (
    InvalidRequestError,
    parse_instances,
    parse_json_strictly,
)
from trending.monitoring.drift import (
    DriftDetector,
    DriftError,
    DriftMonitor,
    DriftResult,
    load_drift_detector,
)
from trending.monitoring.feedback import (
    MIN_TOKEN_CHARS,
    BadFeedbackError,
    FeedbackScorer,
    UnknownTitleError,
    bearer_token_matches,
)
from trending.monitoring.metrics import FEEDBACK_MICRO_F1, FEEDBACK_POSTS, FEEDBACK_WINDOW_TITLES

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MAX_INSTANCES_PER_EVENT = 1000
MAX_EVENT_BYTES = 4 << 20  # 1,000 long plots with reviews
log = logging.getLogger("serving.drift")


class _Prediction(BaseModel):
    model_config = ConfigDict(extra="allow")
    title_id: str | None = None
    genres: list[str]
    scores: dict[str, float] = Field(default_factory=dict)


class _V1Response(BaseModel):
    predictions: list[_Prediction] = Field(max_length=MAX_INSTANCES_PER_EVENT)


class BadEventError(ValueError):
    """A CloudEvent the sender must fix (HTTP 400)."""


class DriftMetrics:
    """The service's Prometheus metrics, in their own registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        detector_labels = ["model", "version", "detector"]
        self.p_value = Gauge(
            "trending_drift_p_value",
            "Bonferroni-adjusted p-value of the drift test on the current window",
            detector_labels,
            registry=self.registry,
        )
        self.distance = Gauge(
            "trending_drift_distance",
            "Largest per-dimension test statistic (KS distance or chi-square) on the window",
            detector_labels,
            registry=self.registry,
        )
        self.is_drift = Gauge(
            "trending_drift_is_drift",
            "1 when the detector flags drift on the current window, else 0",
            detector_labels,
            registry=self.registry,
        )
        self.window_size = Gauge(
            "trending_drift_window_size",
            "Requests in the sliding window",
            ["model", "version"],
            registry=self.registry,
        )
        self.skew = Gauge(
            "trending_feature_skew",
            "KS distance between training and serving values of a feature (training/serving skew)",
            ["model", "version", "feature"],
            registry=self.registry,
        )
        self.events = Counter(
            "trending_drift_events_total",
            "CloudEvents received, by type and outcome (accepted, rejected, unauthorized: no or "
            "a wrong bearer token, i.e. not from a predictor)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.score_seconds = Histogram(
            "trending_drift_score_duration_seconds",
            "Time to score all windows once",
            registry=self.registry,
        )
        self.feedback_micro_f1 = FEEDBACK_MICRO_F1.gauge(self.registry)
        self.feedback_window_titles = FEEDBACK_WINDOW_TITLES.gauge(self.registry)
        self.feedback_posts = FEEDBACK_POSTS.counter(self.registry)

    def publish(self, model: str, version: str, result: DriftResult) -> None:
        """Set the gauges of one scored window."""
        self.window_size.labels(model, version).set(result.window_size)
        for name, outcome in result.detectors.items():
            self.p_value.labels(model, version, name).set(outcome.p_value)
            self.distance.labels(model, version, name).set(outcome.distance)
            self.is_drift.labels(model, version, name).set(1.0 if outcome.is_drift else 0.0)
        for feature, value in result.skew.items():
            self.skew.labels(model, version, feature).set(value)


class DriftService:
    """Parses events into a :class:`DriftMonitor` and scores it periodically; takes feedback.

    Args:
        monitor: The drift windows.
        model_name: The registry model the events belong to.
        default_version: Version of events that name none.
        interval: Seconds between scorings.
        token: Bearer token of the events (the predictors'); None: events are not authenticated.
        feedback_token: Bearer token of ``/feedback``; None: the endpoint is off.
        feedback_window: Labelled titles per version in the rolling micro-F1.
    """

    def __init__(
        self,
        monitor: DriftMonitor,
        *,
        model_name: str,
        default_version: str | None,
        interval: float = 10.0,
        token: str | None = None,
        feedback_token: str | None = None,
        feedback_window: int = 500,
    ) -> None:
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                "the drift token is shorter than 16 characters: set TRENDING_DRIFT_TOKEN (and "
                "the predictors' TRENDING_PAYLOAD_LOG_TOKEN) to a long random secret, e.g. "
                "`openssl rand -hex 32`"
            )
        if feedback_token is not None and len(feedback_token) < MIN_TOKEN_CHARS:
            raise ValueError(
                "the feedback token is shorter than 16 characters: set TRENDING_FEEDBACK_TOKEN "
                "to a long random secret, e.g. `openssl rand -hex 32`"
            )
        self._token = token.encode() if token else None
        self._feedback_token = feedback_token.encode() if feedback_token else None
        self.feedback = FeedbackScorer(window=feedback_window)
        self.monitor = monitor
        self.model_name = model_name
        self.default_version = default_version
        self.interval = interval
        self.metrics = DriftMetrics()
        self.last_results: dict[tuple[str, str], DriftResult] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def authorized(self, header: str | None) -> bool:
        """True without a configured token, else a constant-time check of the bearer token."""
        return self._token is None or bearer_token_matches(header, self._token)

    def take_feedback(
        self, authorization: str | None, body: bytes, content_type: str | None, client: str
    ) -> tuple[int, dict[str, Any]]:
        """Score one labelled feedback post; returns (HTTP status, JSON answer).

        Answers 404 when no feedback token is configured, 401 without the right token, 400 for
        a body to fix, 404 for a title no recent answer covered; a repeat of the same (title,
        client) is answered 200 but not counted.
        """
        posts = self.metrics.feedback_posts
        if self._feedback_token is None:
            posts.labels("off").inc()
            return 404, {
                "error": "feedback is off on this drift service: set TRENDING_FEEDBACK_TOKEN "
                "(the chart's driftDetector.feedback Secret) to take labelled feedback"
            }
        if not bearer_token_matches(authorization, self._feedback_token):
            posts.labels("unauthenticated").inc()
            return 401, {
                "error": "missing or wrong bearer token: send Authorization: Bearer "
                "<the feedback token>"
            }
        try:
            receipt = self.feedback.receive(body, content_type, client)
        except BadFeedbackError as exc:
            posts.labels("invalid").inc()
            return 400, {"error": str(exc)}
        except UnknownTitleError:
            posts.labels("unknown_title").inc()
            return 404, {
                "error": "no recent prediction for this title_id: feedback must follow a "
                "prediction whose request carried the title_id"
            }
        version = str(receipt.version)
        posts.labels("counted" if receipt.counted else "duplicate").inc()
        if receipt.micro_f1 is not None:
            self.metrics.feedback_micro_f1.labels(self.model_name, version).set(receipt.micro_f1)
        self.metrics.feedback_window_titles.labels(self.model_name, version).set(
            receipt.window_titles
        )
        return 200, {
            "model": self.model_name,
            "version": receipt.version,
            "counted": receipt.counted,
            "micro_f1": receipt.micro_f1,
            "window_titles": receipt.window_titles,
        }

    def handle(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """Take one CloudEvent; return a summary. Raises BadEventError for the sender to fix."""
        try:
            parse_json_strictly(body)
        except InvalidRequestError as exc:
            raise BadEventError(f"{exc} (the event's data or the structured event)") from None
        try:
            event = from_http(headers, body)
        except GenericException as exc:
            raise BadEventError(
                f"not a CloudEvent ({exc}); send binary mode (ce-* headers) or structured mode "
                "(content-type application/cloudevents+json)"
            ) from None
        kind = event["type"]
        if kind not in (REQUEST_TYPE, RESPONSE_TYPE):
            raise BadEventError(
                f"ce-type {kind!r} is not scored: send {REQUEST_TYPE} or {RESPONSE_TYPE}"
            )
        # ce-modelversion, or ce-modelid "<name>:<version>" (trending.monitoring.payload_log), or the default.
        model_id = str(event.get("modelid") or "")
        version = (
            event.get("modelversion")
            or (model_id.rsplit(":", 1)[1] if ":" in model_id else None)
            or self.default_version
        )
        if not version:
            raise BadEventError(
                "no model version: send ce-modelversion or ce-modelid <name>:<version> (the "
                "payload logger), or start the service with --default_version"
            )
        data = event.data
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BadEventError("event data is not JSON: send the V1 body as JSON") from None
        version = str(version)
        short = "request" if kind == REQUEST_TYPE else "response"
        try:
            if kind == REQUEST_TYPE:
                if not isinstance(data, dict) or "instances" not in data:
                    raise BadEventError(
                        'request data must be a V1 body {"instances": [...]}; '
                        "V2 bodies are not scored"
                    )
                titles = parse_instances(data["instances"], max_instances=MAX_INSTANCES_PER_EVENT)
                n = self.monitor.observe_requests(
                    self.model_name, version, [(t.plot, t.reviews) for t in titles]
                )
            else:
                try:
                    response = _V1Response.model_validate(data)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise BadEventError(
                        'response data must be a V1 body {"predictions": [{"genres": [...]}]}: '
                        f"{where}: {first['msg']}"
                    ) from None
                n = self.monitor.observe_predictions(
                    self.model_name, version, [p.genres for p in response.predictions]
                )
                if version.isdigit():  # feedback is scored per registry version
                    self.feedback.remember(
                        ((p.title_id, p.genres) for p in response.predictions), int(version)
                    )
        except InvalidRequestError as exc:
            raise BadEventError(str(exc)) from None
        self.metrics.events.labels(short, "accepted").inc()
        return {
            "id": event["id"],
            "type": short,
            "model": self.model_name,
            "version": version,
            "rows": n,
        }

    def score_once(self) -> dict[tuple[str, str], DriftResult]:
        """Score windows with new rows and publish the gauges."""
        start = time.perf_counter()
        results = self.monitor.score()
        for (model, version), result in results.items():
            self.metrics.publish(model, version, result)
            self.last_results[(model, version)] = result
        for (model, version), size in self.monitor.sizes().items():
            self.metrics.window_size.labels(model, version).set(size)
        self.metrics.score_seconds.observe(time.perf_counter() - start)
        return results

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.score_once()
            except Exception:  # keep scoring later windows; the log says what failed
                log.exception("scoring the drift windows failed")

    def start(self) -> None:
        """Start the background scoring thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="drift-scoring", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the scoring thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)


def _warmed(detector: DriftDetector) -> DriftDetector:
    """The detector with its sentence encoder loaded now, not on the first event's request path."""
    detector.embed(["warm up the sentence encoder"])
    return detector


def bundle_loader(bundle_dir: Path) -> Callable[[str, str], DriftDetector]:
    """One bundle's detector for every model version (local runs, tests)."""
    detector = _warmed(load_drift_detector(bundle_dir))
    return lambda model, version: detector


def registry_loader(registry_uri: str, cache_dir: Path) -> Callable[[str, str], DriftDetector]:
    """Each version's own detector, downloaded from the registry on first use."""
    from trending.modelling.bundle import MANIFEST_NAME, BundleError, verify_bundle
    from trending.registry import Registry, RegistryError

    def load(model: str, version: str) -> DriftDetector:
        if not version.isdigit():
            raise DriftError(f"model version {version!r} is not a registry version number")
        bundle = cache_dir / model / version
        try:
            if (bundle / MANIFEST_NAME).is_file():
                verify_bundle(bundle)  # downloaded before (e.g. at startup): reuse it
            else:
                bundle = Registry.from_uri(registry_uri, model).download(int(version), bundle)
        except (RegistryError, BundleError) as exc:
            raise DriftError(f"no detector for {model} version {version}: {exc}") from None
        return _warmed(load_drift_detector(bundle))

    return load


def create_app(
    service: DriftService, *, body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
) -> FastAPI:
    """The FastAPI app: POST / (CloudEvents), POST /feedback, GET /healthz, /readyz, /metrics, /drift.

    Bodies are read under ``body_timeout_seconds`` and ``MAX_EVENT_BYTES`` (408, 413), and every
    error answers ``{"error": ...}`` (``serving.predictor.http.harden``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.stop()

    app = FastAPI(title="Trending Now drift detector", lifespan=lifespan)
    harden(app, max_payload_bytes=MAX_EVENT_BYTES, body_timeout_seconds=body_timeout_seconds)

    @app.post("/")
    async def receive(request: Request) -> JSONResponse:
        if not service.authorized(request.headers.get("authorization")):
            service.metrics.events.labels("unknown", "unauthorized").inc()
            return JSONResponse(
                {
                    "error": "missing or wrong bearer token: only the predictors' payload logger "
                    "may send events (Authorization: Bearer <TRENDING_PAYLOAD_LOG_TOKEN>)"
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await request.body()  # read by the guard already, under its deadline and cap
        try:
            summary = service.handle(dict(request.headers), body)
        except BadEventError as exc:
            service.metrics.events.labels("unknown", "rejected").inc()
            return JSONResponse({"error": str(exc)}, status_code=400)
        except DriftError as exc:
            service.metrics.events.labels("unknown", "rejected").inc()
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse(summary, status_code=202)

    @app.post("/feedback")
    async def feedback(request: Request) -> JSONResponse:
        status, answer = service.take_feedback(
            request.headers.get("authorization"),
            await request.body(),
            request.headers.get("content-type"),
            request.client.host if request.client else "unknown",
        )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(answer, status_code=status, headers=headers)

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        alive = service._thread is not None and service._thread.is_alive()
        return PlainTextResponse(
            "ready" if alive else "starting", status_code=200 if alive else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/drift")
    async def drift() -> JSONResponse:
        """The latest scores per model version, as JSON (for people and tests)."""
        return JSONResponse(
            [
                {
                    "model": model,
                    "version": version,
                    "window_size": result.window_size,
                    "is_drift": result.is_drift,
                    "detectors": {k: vars(v) for k, v in result.detectors.items()},
                    "skew": result.skew,
                }
                for (model, version), result in list(service.last_results.items())
            ]
        )

    return app
