"""The drift service's HTTP app: receives KServe logger CloudEvents and exports drift gauges.

The predictor's payload logger POSTs each request and each response as a CloudEvent (binary or
structured mode) with ``ce-type`` ``org.kubeflow.serving.inference.request`` or ``.response``,
``ce-inferenceservicename`` and ``ce-modelversion``; bodies are V1 JSON. A background thread
scores every window with new rows each ``interval`` seconds (``trending.monitoring.drift.DriftMonitor``).

Only the predictors may feed it: with a token configured, an event without
``Authorization: Bearer <token>`` (the predictors' payload logger sends it) is refused with 401
and counted as ``trending_drift_events_total{outcome="unauthorized"}``.
KServe's own logger (the agent sidecar) cannot send such a header; where it feeds the service,
the chart's NetworkPolicy is what keeps other pods out. Bodies are read under a size cap and
must be strict JSON (``serving.predictor.http.parse_json_strictly``).
"""

from __future__ import annotations

import hmac
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

from serving.predictor.http import DEFAULT_BODY_TIMEOUT_SECONDS, harden, parse_json_strictly
from trending.modelling.inference import InvalidRequestError, parse_instances
from trending.monitoring.drift import (
    DriftDetector,
    DriftError,
    DriftMonitor,
    DriftResult,
    load_drift_detector,
)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MAX_INSTANCES_PER_EVENT = 1000
MAX_EVENT_BYTES = 4 << 20  # 1,000 long plots with reviews
log = logging.getLogger("serving.drift")


class _Prediction(BaseModel):
    model_config = ConfigDict(extra="allow")
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
    """Parses events into a :class:`DriftMonitor` and scores it periodically."""

    def __init__(
        self,
        monitor: DriftMonitor,
        *,
        model_name: str,
        default_version: str | None,
        interval: float = 10.0,
        token: str | None = None,
    ) -> None:
        if token is not None and len(token) < 16:
            raise ValueError(
                "the drift token is shorter than 16 characters: set TRENDING_DRIFT_TOKEN (and "
                "the predictors' TRENDING_PAYLOAD_LOG_TOKEN) to a long random secret, e.g. "
                "`openssl rand -hex 32`"
            )
        self._token = token.encode() if token else None
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
        if self._token is None:
            return True
        scheme, _, credentials = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "replace"), self._token
        )

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


def bundle_loader(bundle_dir: Path) -> Callable[[str, str], DriftDetector]:
    """One bundle's detector for every model version (local runs, tests)."""
    detector = load_drift_detector(bundle_dir)
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
        return load_drift_detector(bundle)

    return load


def create_app(
    service: DriftService, *, body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
) -> FastAPI:
    """The FastAPI app: POST / (CloudEvents), GET /healthz, /readyz, /metrics, /drift.

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
