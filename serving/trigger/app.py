"""The retrain trigger's HTTP app: Alertmanager webhook (v4) in, one continuous-training run out.

POST /alerts needs ``Authorization: Bearer <token>`` (Alertmanager's
``http_config.authorization.credentials_file``). Firing alerts labelled ``action="retrain"`` must
carry ``model`` and ``reason`` (``RETRAIN_REASONS``), optionally ``window`` (``WINDOW_KINDS``).
De-duplication and rate limiting live in ``trending.rollout.retrain.RetrainCoordinator``.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from serving.predictor.http import harden
from trending.data.windows import WINDOW_KINDS
from trending.rollout.retrain import (
    RETRAIN_REASONS,
    RetrainCoordinator,
    RetrainDecision,
    RetrainRequest,
)

log = logging.getLogger("serving.trigger")
MAX_BODY_BYTES = 1 << 20


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager webhook notification."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookPayload(BaseModel):
    """Alertmanager webhook payload, version 4."""

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=1000)


class BadAlertError(ValueError):
    """An alert the trigger cannot act on; the message names the label to fix."""


def retrain_requests(
    payload: WebhookPayload, models: Collection[str] | None = None
) -> list[RetrainRequest]:
    """One request per model among the firing ``action="retrain"`` alerts (first alert's reason).

    ``models``: the models this trigger retrains; an alert for another one is a bad alert.
    """
    by_model: dict[str, RetrainRequest] = {}
    for i, alert in enumerate(payload.alerts):
        if alert.status != "firing" or alert.labels.get("action") != "retrain":
            continue
        name = alert.labels.get("alertname", f"alerts[{i}]")
        model = alert.labels.get("model")
        reason = alert.labels.get("reason")
        window = alert.labels.get("window")
        if not model:
            raise BadAlertError(f"alert {name} has no 'model' label: add it to the alert rule")
        if models is not None and model not in models:
            raise BadAlertError(
                f"alert {name} has model={model!r}, which this trigger does not retrain "
                f"(configured: {', '.join(sorted(models))}): fix the rule's 'model' label"
            )
        if reason not in RETRAIN_REASONS:
            raise BadAlertError(
                f"alert {name} has reason={reason!r}: the rule's 'reason' label must be one of "
                f"{', '.join(RETRAIN_REASONS)}"
            )
        if window is not None and window not in WINDOW_KINDS:
            raise BadAlertError(
                f"alert {name} has window={window!r}: use one of {', '.join(WINDOW_KINDS)}"
            )
        evidence = {
            "alertname": name,
            "fingerprint": alert.fingerprint,
            "labels": alert.labels,
            "starts_at": alert.startsAt.isoformat(),
            "group_key": payload.groupKey,
        }
        if model in by_model:
            by_model[model].evidence.setdefault("more_alerts", []).append(name)
            continue
        try:
            by_model[model] = RetrainRequest.for_reason(
                model,
                reason,
                window=window,
                evidence=evidence,  # type: ignore[arg-type]
            )
        except ValidationError:
            raise BadAlertError(
                f"alert {name} has model={model!r}: use a registry model name "
                "(lowercase letters, digits, '-')"
            ) from None
    return list(by_model.values())


class TriggerService:
    """Authenticates, validates and hands requests to the coordinator; counts what happened."""

    def __init__(
        self,
        coordinator: RetrainCoordinator,
        token: str,
        *,
        periodic: Callable[[], list[RetrainRequest]] | None = None,
        check_interval: float = 300.0,
    ) -> None:
        if len(token) < 16:
            raise ValueError(
                "the trigger token is shorter than 16 characters: set TRENDING_TRIGGER_TOKEN (or "
                "--token_file) to a long random secret, e.g. `openssl rand -hex 32`"
            )
        self.coordinator = coordinator
        self._token = token.encode()
        self.periodic = periodic
        self.check_interval = check_interval
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "trending_retrain_runs_total",
            "Continuous-training runs started",
            ["model", "reason"],
            registry=self.registry,
        )
        self.requests = Counter(
            "trending_retrain_requests_total",
            "Retraining requests by outcome (started, suppressed, failed)",
            ["model", "reason", "outcome"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "trending_retrain_webhook_total",
            "Webhook calls by HTTP status",
            ["code"],
            registry=self.registry,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def authorized(self, header: str | None) -> bool:
        """Constant-time check of ``Authorization: Bearer <token>``."""
        scheme, _, credentials = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self._token
        )

    def submit(self, request: RetrainRequest) -> RetrainDecision:
        """Pass one request to the coordinator and count the outcome."""
        decision = self.coordinator.request(request)
        self.requests.labels(request.model_name, request.reason, decision.status).inc()
        if decision.status == "started":
            self.runs.labels(request.model_name, request.reason).inc()
        log.info("retrain %s: %s", decision.status, decision.model_dump_json())
        return decision

    def _loop(self) -> None:
        assert self.periodic is not None
        while not self._stop.wait(self.check_interval):
            try:
                for request in self.periodic():
                    self.submit(request)
            except Exception:
                log.exception("the schedule/data-volume check failed")

    def start(self) -> None:
        """Start the periodic schedule/data-volume check, if configured."""
        if self.periodic is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="retrain-checks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the periodic check."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def create_app(service: TriggerService) -> FastAPI:
    """The FastAPI app: POST /alerts, GET /healthz, /readyz, /metrics."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.stop()

    app = FastAPI(title="Trending Now retrain trigger", lifespan=lifespan)
    harden(app, max_payload_bytes=MAX_BODY_BYTES)  # body deadline and cap, {"error": ...} bodies

    def answer(
        body: dict[str, Any], code: int, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        service.webhooks.labels(str(code)).inc()
        return JSONResponse(body, status_code=code, headers=headers)

    @app.post("/alerts")
    async def receive(request: Request) -> JSONResponse:
        if not service.authorized(request.headers.get("authorization")):
            return answer(
                {"error": "missing or wrong bearer token: send Authorization: Bearer <token>"},
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return answer({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, 413)
        try:
            payload = WebhookPayload.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return answer(
                {
                    "error": f"not an Alertmanager webhook v4 payload: {where}: {first['msg']}",
                    "errors": exc.error_count(),
                },
                400,
            )
        try:
            wanted = retrain_requests(payload, service.coordinator.models)
        except BadAlertError as exc:
            return answer({"error": str(exc)}, 400)
        decisions = [await run_in_threadpool(service.submit, r) for r in wanted]
        return answer({"decisions": [d.model_dump() for d in decisions]}, 200)

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        return PlainTextResponse("ready")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    return app
