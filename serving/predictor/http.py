"""HTTP plumbing shared by the predictor and the transformer on KServe's FastAPI app.

``InferenceGuard`` is a plain ASGI middleware in front of the inference routes
(``/v1/models/<m>:predict`` and ``/v2/models/<m>/infer``): it enforces the payload cap (413),
rejects non-UTF-8 and invalid JSON with a message that says what to fix (400), and counts every
request in ``trending_requests_total`` / ``trending_request_duration_seconds`` with its final
status, including the 4xx and 5xx answers produced before or after the model ran.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from timing_asgi import TimingMiddleware

from trending.modelling.inference import InvalidRequestError, check_payload_size, decode_json_body
from trending.monitoring.metrics import ServingMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The V2 binary tensor extension: the body is a JSON header followed by raw tensor bytes.
BINARY_HEADER = b"inference-header-content-length"


@dataclass
class RequestState:
    """What the model tells the middleware about the request it is serving."""

    error_kind: str | None = None


CURRENT_REQUEST: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "trending_current_request", default=None
)


def note_error(kind: str) -> bool:
    """Record the kind of a failure for the HTTP request being served.

    Returns:
        True when an HTTP request is being served (the middleware will count the error),
        False otherwise (gRPC: the caller counts it).
    """
    state = CURRENT_REQUEST.get()
    if state is None:
        return False
    state.error_kind = kind
    return True


def inference_protocol(path: str) -> str | None:
    """``v1``/``v2`` for the inference routes, None for everything else (health, metrics)."""
    if path.startswith("/v1/models/") and path.endswith(":predict"):
        return "v1"
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        return "v2"
    return None


def _kind_for_status(status: int) -> str:
    return {404: "not_found", 413: "payload_too_large", 422: "invalid_input"}.get(
        status, "internal" if status >= 500 else "invalid_input"
    )


class InferenceGuard:
    """ASGI middleware: payload cap, UTF-8/JSON check and request metrics on inference routes.

    Args:
        app: The wrapped ASGI app.
        max_payload_bytes: Largest request body accepted (413 above).
        metrics: Where requests are counted; None to count nothing.
    """

    def __init__(
        self, app: ASGIApp, *, max_payload_bytes: int, metrics: ServingMetrics | None = None
    ) -> None:
        self.app = app
        self.max_payload_bytes = max_payload_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard and count one request (other traffic passes straight through)."""
        protocol = (
            inference_protocol(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if protocol is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = RequestState()
        token = CURRENT_REQUEST.set(state)
        status = 500
        try:
            try:
                body, binary = await self._read_body(scope, receive)
                if not binary:
                    decode_json_body(body, max_bytes=self.max_payload_bytes)
            except InvalidRequestError as exc:
                state.error_kind = exc.kind
                status = exc.status
                await JSONResponse({"error": str(exc)}, status_code=status)(scope, receive, send)
                return

            async def replay() -> Message:
                nonlocal body
                chunk, body = body, b""
                return {"type": "http.request", "body": chunk, "more_body": False}

            async def send_and_watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, replay, send_and_watch)
        except BaseException:
            status = 500
            raise
        finally:
            CURRENT_REQUEST.reset(token)
            if self.metrics is not None:
                self.metrics.record_request(protocol, status, time.perf_counter() - start)
                if status >= 400:
                    self.metrics.record_error(state.error_kind or _kind_for_status(status))

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, bool]:
        binary = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidRequestError("the Content-Length header is not a number") from None
                check_payload_size(declared, self.max_payload_bytes)
            elif name == BINARY_HEADER:
                binary = True
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            check_payload_size(size, self.max_payload_bytes)  # chunked bodies have no length
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), binary


async def invalid_request_handler(_: Request, exc: Exception) -> JSONResponse:
    """Answer an ``InvalidRequestError`` with its status and message, KServe's error shape."""
    status = exc.status if isinstance(exc, InvalidRequestError) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)


def install(app: FastAPI, *, max_payload_bytes: int, metrics: ServingMetrics | None) -> None:
    """Add the guard and the ``InvalidRequestError`` handler to KServe's app (before it starts)."""
    app.add_middleware(InferenceGuard, max_payload_bytes=max_payload_bytes, metrics=metrics)
    app.add_exception_handler(InvalidRequestError, invalid_request_handler)


def drop_timing_middleware(app: FastAPI) -> None:
    """Remove KServe's timing middleware from ``app`` when the server starts.

    KServe adds it at start-up to write two ``kserve.trace`` lines per request (wall and CPU
    time). With those lines off it still matched the request against every route to name it and
    read the CPU clock twice per request, ~5 % of a single-title request's instructions.
    """

    def drop() -> None:
        kept = [m for m in app.user_middleware if m.cls is not TimingMiddleware]
        if len(kept) != len(app.user_middleware):
            app.user_middleware = kept
            app.middleware_stack = None  # rebuilt by the first request

    app.router.on_startup.append(drop)
