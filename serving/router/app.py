"""The router: splits traffic between stable and canary, mirrors copies to a shadow, counts all.

The split comes from a JSON file (``serving.router.split``) that the canary controller and the CLI
rewrite atomically; the router re-reads it when its modification time changes. Every answer is
counted under the version that produced it, with the metric names the predictor uses, so
Prometheus can compare stable with canary (see docs/canary.md).

``/feedback`` and ``/shadow/events`` feed evidence the canary policy decides on, so both need
``Authorization: Bearer <token>``; refused posts are answered 401 and counted in
``trending_router_refused_total``. Feedback is counted once per title and client. Every error body
is ``{"error": "<what to fix>"}`` with no exception text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.router.feedback import (
    MAX_FEEDBACK_BYTES,
    BadFeedbackError,
    FeedbackLedger,
    UnknownTitleError,
    parse_feedback,
)
from serving.router.metrics import RouterMetrics
from serving.router.split import SplitFile, Upstream
from trending.rollout.shadow import jaccard

log = logging.getLogger("trending.router")
MIN_TOKEN_CHARS = 16
MAX_EVENT_BYTES = 1 << 20  # a logged request or response: the predictor's payload cap
MAX_EVENT_ID_CHARS = 200
PENDING_EVENTS = 1_000
LOGGER_EVENT_PREFIX = "org.kubeflow.serving.inference."
FEEDBACK, SHADOW_EVENTS = "/feedback", "/shadow/events"


class BodyTooLargeError(ValueError):
    """A request body above the endpoint's cap."""


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, read no further than ``limit`` bytes.

    Raises:
        BodyTooLargeError: The body has more than ``limit`` bytes.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the body has more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """The router's error answer: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class RouterService:
    """Routes inference traffic by the split, and takes authenticated feedback and logger events.

    Args:
        split_file: The traffic split (must be valid at start).
        token: Bearer token required on ``/feedback`` and ``/shadow/events`` (16+ characters).
        upstream_timeout: Seconds to wait for a model server.
        seed: Seed of the split's random choice (tests); None = system randomness.
        transport: How upstream requests are sent (tests pass a fake model server); None =
            over the network.

    Raises:
        ValueError: A token shorter than 16 characters.
        SplitFileError: The split file is missing or invalid.
    """

    def __init__(
        self,
        split_file: SplitFile,
        token: str,
        *,
        upstream_timeout: float = 30.0,
        seed: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"the router token is shorter than {MIN_TOKEN_CHARS} characters: put a long "
                "random secret in the token file, e.g. `openssl rand -hex 32`"
            )
        self.split_file = split_file
        split_file.current()  # refuse to start on a missing or invalid split
        self._token = token.encode()
        self.upstream_timeout = upstream_timeout
        self.metrics = RouterMetrics()
        self.ledger = FeedbackLedger()
        self._rng = random.Random(seed)  # noqa: S311 - traffic sampling, not security
        self._pending: OrderedDict[str, dict[str, bytes]] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The upstream HTTP client (made on first use, inside the server's event loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.upstream_timeout,
                limits=httpx.Limits(max_connections=64),
                transport=self._transport,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the upstream client."""
        if self._client is not None:
            await self._client.aclose()

    # ---- authentication -----------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        """Constant-time check of ``Authorization: Bearer <token>``."""
        scheme, _, credentials = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "replace"), self._token
        )

    def refuse_unauthenticated(self, endpoint: str) -> JSONResponse:
        """401 for a post without the right bearer token, counted."""
        self.metrics.refuse(endpoint, "unauthenticated")
        return error(
            "missing or wrong bearer token: send Authorization: Bearer <token>",
            401,
            {"WWW-Authenticate": "Bearer"},
        )

    # ---- inference traffic --------------------------------------------------------------------

    def _schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _shadow_copy(
        self, model: str, shadow: Upstream, path: str, body: bytes, stable: Any
    ) -> None:
        version = str(shadow.version)
        try:
            response = await self.client.post(
                f"{shadow.url}{path}", content=body, headers={"content-type": "application/json"}
            )
            answer = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, RecursionError) as exc:
            log.warning("shadow %s failed: %s", version, exc)
            answer = None
        if answer is None:
            self.metrics.shadow_results.labels(model, version, "error").inc()
            return
        self.metrics.observe_shadow(model, shadow.version, stable, answer)

    async def forward(self, request: Request, path: str, protocol: str) -> Response:
        """Send one inference request to stable or canary (by the split) and count the answer."""
        split = self.split_file.current()
        body = await request.body()
        use_canary = split.canary is not None and self._rng.random() * 100 < split.canary_percent
        target = split.canary if use_canary and split.canary is not None else split.stable
        version = str(target.version)
        started = time.perf_counter()
        try:
            upstream = await self.client.post(
                f"{target.url}{path}", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            log.warning("model server for version %s unreachable: %s", version, exc)
            self.metrics.requests.labels(split.model, version, protocol, "502").inc()
            self.metrics.errors.labels(split.model, version, "upstream_unreachable").inc()
            return error(f"model server for version {version} at {target.url} unreachable", 502)
        self.metrics.duration.labels(split.model, version).observe(time.perf_counter() - started)
        code = str(upstream.status_code)
        self.metrics.requests.labels(split.model, version, protocol, code).inc()
        if upstream.status_code != 200:
            self.metrics.errors.labels(split.model, version, f"http_{code}").inc()
        elif protocol == "v1":
            self._observe_v1(split, target, path, body, upstream)
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "application/json"),
            headers={"x-trending-version": version},
        )

    def _observe_v1(
        self, split: Any, target: Upstream, path: str, body: bytes, upstream: httpx.Response
    ) -> None:
        try:
            answer = upstream.json()
        except (ValueError, RecursionError):
            log.warning("version %s answered 200 with a body that is not JSON", target.version)
            return
        sets = self.metrics.observe_answer(split.model, target.version, answer)
        with contextlib.suppress(ValueError, AttributeError, RecursionError):
            self.ledger.remember(json.loads(body).get("instances", []), target.version, sets)
        shadow = split.shadow
        if (
            shadow is not None
            and target is split.stable
            and self._rng.random() * 100 < split.shadow_percent
        ):
            self._schedule(self._shadow_copy(split.model, shadow, path, body, answer))

    # ---- evidence: feedback and logger events -------------------------------------------------

    async def feedback(self, request: Request) -> JSONResponse:
        """Score labelled feedback against the version that predicted the title (once per client)."""
        if not self.authorized(request.headers.get("authorization")):
            return self.refuse_unauthenticated(FEEDBACK)
        try:
            raw = await read_capped(request, MAX_FEEDBACK_BYTES)
            item = parse_feedback(raw, request.headers.get("content-type"))
        except (BadFeedbackError, BodyTooLargeError) as exc:
            self.metrics.refuse(FEEDBACK, "invalid")
            return error(str(exc), 400)
        client = item.client_id or (request.client.host if request.client else "unknown")
        try:
            outcome = self.ledger.record(item, client)
        except UnknownTitleError:
            self.metrics.refuse(FEEDBACK, "unknown_title")
            return error(
                "no recent prediction for this title_id; feedback must follow a prediction "
                "made through this router",
                404,
            )
        score = jaccard(outcome.predicted, item.genres)
        if outcome.counted:
            model = self.split_file.current().model
            self.metrics.feedback.labels(model, str(outcome.version)).observe(score)
            self.metrics.observe_feedback(model, outcome.version, outcome.predicted, item.genres)
        else:
            self.metrics.refuse(FEEDBACK, "duplicate")
        return JSONResponse(
            {"version": outcome.version, "jaccard": score, "counted": outcome.counted}
        )

    async def logger_event(self, request: Request) -> Response:
        """KServe logger sink: pair request and response CloudEvents by id, replay to the shadow."""
        if not self.authorized(request.headers.get("authorization")):
            return self.refuse_unauthenticated(SHADOW_EVENTS)
        event_id, kind = request.headers.get("ce-id", ""), request.headers.get("ce-type", "")
        if not 0 < len(event_id) <= MAX_EVENT_ID_CHARS or not kind.startswith(LOGGER_EVENT_PREFIX):
            self.metrics.refuse(SHADOW_EVENTS, "invalid")
            return error(
                "expected a KServe logger CloudEvent (a ce-id header of at most "
                f"{MAX_EVENT_ID_CHARS} characters and ce-type "
                "org.kubeflow.serving.inference.request|response)",
                400,
            )
        try:
            body = await read_capped(request, MAX_EVENT_BYTES)
        except BodyTooLargeError as exc:
            self.metrics.refuse(SHADOW_EVENTS, "invalid")
            return error(str(exc), 400)
        part = "request" if kind.endswith(".request") else "response"
        entry = self._pending.setdefault(event_id, {})
        entry[part] = body
        while len(self._pending) > PENDING_EVENTS:
            self._pending.popitem(last=False)
        split = self.split_file.current()
        if "request" in entry and "response" in entry and split.shadow is not None:
            self._pending.pop(event_id, None)
            try:
                stable_answer = json.loads(entry["response"])
            except (ValueError, RecursionError):
                return Response(status_code=202)
            path = f"/v1/models/{split.model}:predict"
            self._schedule(
                self._shadow_copy(split.model, split.shadow, path, entry["request"], stable_answer)
            )
        return Response(status_code=202)

    def readiness(self) -> dict[str, Any]:
        """What the router routes now."""
        split = self.split_file.current()
        return {
            "ready": True,
            "stable": split.stable.version,
            "canary": split.canary.version if split.canary else None,
            "canary_percent": split.canary_percent,
        }


def create_app(service: RouterService) -> FastAPI:
    """The FastAPI app: inference routes, /feedback, /shadow/events, readiness, /metrics."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.aclose()

    app = FastAPI(title="trending router", lifespan=lifespan)
    app.state.metrics = service.metrics

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        text = {404: "no such route", 405: "method not allowed on this route"}
        return error(text.get(exc.status_code, "request refused"), exc.status_code)

    @app.post("/v1/models/{model}:predict")
    async def predict_v1(model: str, request: Request) -> Response:
        return await service.forward(request, f"/v1/models/{model}:predict", "v1")

    @app.post("/v2/models/{model}/infer")
    async def infer_v2(model: str, request: Request) -> Response:
        return await service.forward(request, f"/v2/models/{model}/infer", "v2")

    @app.post(FEEDBACK)
    async def feedback(request: Request) -> JSONResponse:
        return await service.feedback(request)

    @app.post(SHADOW_EVENTS)
    async def logger_event(request: Request) -> Response:
        return await service.logger_event(request)

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        return JSONResponse(service.readiness())

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def build_router(
    split_path: Path, token: str, *, upstream_timeout: float = 30.0, seed: int | None = None
) -> FastAPI:
    """The router app over ``split_path`` (service and app in one call, for ``main`` and tests)."""
    service = RouterService(
        SplitFile(split_path), token, upstream_timeout=upstream_timeout, seed=seed
    )
    return create_app(service)
