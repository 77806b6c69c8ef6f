"""The controller's HTTP face: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` says the reconcile loop is alive; ``/readyz`` that its last pass reached Kubernetes
and the registry (and why not, when not).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from serving.canary.controller import LoopStatus


def create_app(
    status: LoopStatus,
    metrics_registry: CollectorRegistry,
    *,
    stale_after_seconds: float,
    alive: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The app serving the controller's status and metrics.

    Args:
        status: Updated by the loop on every pass.
        metrics_registry: The controller's metrics.
        stale_after_seconds: ``/healthz`` fails when no pass started for this long (a hung loop).
        alive: Whether the loop thread still runs.
        clock: Unix time now.
    """
    app = FastAPI(title="Trending Now canary controller")

    @app.get("/healthz")
    def healthz() -> PlainTextResponse:
        age = clock() - status.heartbeat
        if not alive() or age > stale_after_seconds:
            return PlainTextResponse(f"reconcile loop stalled ({age:.0f} s since a pass)", 500)
        return PlainTextResponse("ok")

    @app.get("/readyz")
    def readyz() -> PlainTextResponse:
        return PlainTextResponse(status.message, 200 if status.ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return app
