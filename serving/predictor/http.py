"""HTTP plumbing shared by the predictor and the transformer on KServe's FastAPI app.

``InferenceGuard`` is a plain ASGI middleware in front of KServe's routes. For every request
that carries a body it reads the body under a deadline (408 and the connection closed when a
client stalls) and a size cap (413). On the inference routes (``/v1/models/<m>:predict``,
``/v2/models/<m>/infer``) it accepts only strict JSON (UTF-8, no NaN/Infinity, no lone
surrogates, bounded nesting: ``trending.modelling.bundle.inference.parse_json_strictly``, which the
feedback parser of the router and the drift service uses too) or a well-formed V2 binary-tensor
body, which it turns into the equivalent JSON body, so KServe's parsers only ever see input they
handle; and it counts every request in ``trending_requests_total`` /
``trending_request_duration_seconds`` with its final status.

It also serves the Open Inference Protocol's versioned paths
(``/v2/models/<m>/versions/<v>[/ready|/infer]``): the version the server holds answers as the
unversioned path, another version gets 404. The repository extension (load/unload) and
``:explain`` are refused: the server serves the one verified bundle it loaded at start.

Every error body is ``{"error": "<what to fix>"}``: FastAPI's 422 ``{"detail": ...}`` becomes
400, unknown routes 404/405 say so, and an unexpected failure answers a generic 500 without
exception text (the log has the traceback).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cloudevents.exceptions import GenericException
from cloudevents.http import from_http
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from timing_asgi import TimingMiddleware

from trending.modelling.bundle.inference import (
    InvalidRequestError,
    check_payload_size,
    parse_json_strictly,
)
from trending.monitoring.metrics import ServingMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("kserve.trending")

# The V2 binary tensor extension: the body is a JSON header followed by raw tensor bytes.
BINARY_HEADER = b"inference-header-content-length"
# Content types KServe's V1 decoder parses as JSON (kserve.protocol.dataplane.JSON_HEADERS).
JSON_MEDIA_TYPES = (
    b"application/json",
    b"application/cloudevents+json",
    b"application/ld+json",
    b"application/octet-stream",
)
DEFAULT_BODY_TIMEOUT_SECONDS = 10.0

_VERSIONED = re.compile(r"^/v2/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)(?P<rest>/.*)?$")
_VERSIONED_TAILS = ("", "/", "/ready", "/infer")


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
    return {404: "not_found", 408: "timeout", 413: "payload_too_large", 422: "invalid_input"}.get(
        status, "internal" if status >= 500 else "invalid_input"
    )


# ---- the V2 binary tensor extension ------------------------------------------------------------


def binary_request_as_json(body: bytes, json_length: bytes) -> bytes:
    """Turn a V2 binary-extension body into the equivalent JSON body.

    The body is a JSON header of ``json_length`` bytes, then each input's raw bytes in order
    (``parameters.binary_data_size`` of them). Raw BYTES tensors (a 4-byte little-endian length
    before each element) become lists of strings in ``data``.

    Raises:
        InvalidRequestError: Saying which part of the framing to fix.
    """
    length_text = json_length.decode("latin-1").strip()
    if not length_text.isdigit() or not 0 < int(length_text) <= len(body):
        raise InvalidRequestError(
            f"the inference-header-content-length header is {length_text[:40]!r}, but it must "
            f"be the length in bytes of the JSON header at the start of the body (1 to "
            f"{len(body)} here)"
        )
    split = int(length_text)
    header = parse_json_strictly(body[:split])
    inputs = header.get("inputs") if isinstance(header, dict) else None
    if not isinstance(inputs, list):
        raise InvalidRequestError(
            'the binary request\'s JSON header must be an object with "inputs": [...]'
        )
    offset = split
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise InvalidRequestError(f"inputs[{i}] must be an object")
        parameters = tensor.get("parameters")
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue  # its data is in the JSON header
        size = parameters.pop("binary_data_size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidRequestError(
                f"inputs[{i}].parameters.binary_data_size must be a byte count (an integer >= 0)"
            )
        if offset + size > len(body):
            raise InvalidRequestError(
                f"inputs[{i}].parameters.binary_data_size is {size}, but only "
                f"{len(body) - offset} bytes follow: send the raw tensor bytes after the header"
            )
        if tensor.get("datatype") != "BYTES":
            raise InvalidRequestError(
                f"inputs[{i}] has binary data of datatype {str(tensor.get('datatype'))[:20]!r}: "
                "this server takes one BYTES tensor of plot texts"
            )
        tensor["data"] = _bytes_elements(body[offset : offset + size], i)
        offset += size
    if offset != len(body):
        raise InvalidRequestError(
            f"{len(body) - offset} bytes follow the last binary tensor: each input's "
            "parameters.binary_data_size must count its bytes exactly"
        )
    return orjson.dumps(header)


def _bytes_elements(raw: bytes, index: int) -> list[str]:
    """The elements of a raw BYTES tensor (4-byte little-endian length, then UTF-8 bytes)."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidRequestError(
                f"inputs[{index}]'s raw BYTES end inside an element's 4-byte length"
            )
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidRequestError(
                f"inputs[{index}]'s raw BYTES element {len(elements)} claims {size} bytes, but "
                f"only {len(raw) - offset} follow"
            )
        try:
            elements.append(raw[offset : offset + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequestError(
                f"element {len(elements)} of inputs[{index}] is not valid UTF-8: encode plots "
                "as UTF-8"
            ) from None
        offset += size
    return elements


# ---- the guard ---------------------------------------------------------------------------------


class BodyTimeoutError(Exception):
    """The client did not send the whole body in time."""


class ClientGoneError(Exception):
    """The client disconnected before sending the whole body."""


def _json_response(status: int, message: str, *, close: bool = False) -> JSONResponse:
    headers = {"connection": "close"} if close else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class InferenceGuard:
    """ASGI middleware: body deadline and cap, strict JSON, versioned paths, request metrics.

    Args:
        app: The wrapped ASGI app.
        max_payload_bytes: Largest request body accepted (413 above).
        metrics: Where inference requests are counted; None to count nothing.
        served_versions: Model name -> the version the server holds (versioned paths).
        body_timeout_seconds: Longest time a client may take to send a request body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_payload_bytes: int,
        metrics: ServingMetrics | None = None,
        served_versions: dict[str, str] | None = None,
        body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.max_payload_bytes = max_payload_bytes
        self.metrics = metrics
        self.served_versions = served_versions or {}
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard and count one request (lifespan and websocket traffic passes through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._route_versions(scope)
        if refusal is not None:
            await _json_response(*refusal, close=True)(scope, receive, send)
            return
        protocol = inference_protocol(scope["path"]) if scope["method"] == "POST" else None
        if protocol is None:
            await self._pass_with_body(scope, receive, send)
            return
        start = time.perf_counter()
        state = RequestState()
        token = CURRENT_REQUEST.set(state)
        status = 500
        try:
            try:
                body, headers = await self._checked_body(scope, receive, protocol)
            except InvalidRequestError as exc:
                state.error_kind = exc.kind
                status = exc.status
                await _json_response(status, str(exc))(scope, receive, send)
                return
            except BodyTimeoutError:
                state.error_kind, status = "timeout", 408
                await self._answer_timeout(scope, receive, send)
                return
            except ClientGoneError:
                state.error_kind, status = "client_gone", 499
                return

            async def send_and_watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            scope = {**scope, "headers": headers}
            await self.app(scope, _replay(body, receive), send_and_watch)
        except BaseException:
            status = 500
            raise
        finally:
            CURRENT_REQUEST.reset(token)
            if self.metrics is not None:
                self.metrics.record_request(protocol, status, time.perf_counter() - start)
                if status >= 400:
                    self.metrics.record_error(state.error_kind or _kind_for_status(status))

    def _route_versions(self, scope: Scope) -> tuple[int, str] | None:
        """Rewrite a versioned path in ``scope`` to the unversioned one; (status, why) to refuse.

        Refused: another version than the one served, the repository extension, ``:explain``.
        """
        path: str = scope["path"]
        if path.startswith("/v2/repository/"):
            return 403, (
                "the model repository extension is disabled: this server serves the one "
                "verified bundle it loaded at start; deploy another version through the registry"
            )
        if path.startswith("/v1/models/") and path.endswith(":explain"):
            return 404, (
                "this model has no explainer: POST /v1/models/<name>:predict for genres and scores"
            )
        match = _VERSIONED.match(path)
        if match is None:
            return None
        model, version, rest = match["model"], match["version"], match["rest"] or ""
        if rest not in _VERSIONED_TAILS:
            return 404, f"no route {path}: versioned paths end in /ready, /infer or nothing"
        served = self.served_versions.get(model)
        if served is not None and version != served:
            return 404, (
                f"model {model} version {version} is not served here: this server holds version "
                f"{served}; use /v2/models/{model}/versions/{served}{rest.rstrip('/')} or "
                f"/v2/models/{model}{rest.rstrip('/')}"
            )
        unversioned = f"/v2/models/{model}{rest.rstrip('/')}"
        scope["path"] = unversioned
        scope["raw_path"] = unversioned.encode()
        return None

    async def _pass_with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Other routes: read a declared body under the deadline and cap, then pass it on."""
        if not _declares_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except InvalidRequestError as exc:
            await _json_response(exc.status, str(exc))(scope, receive, send)
            return
        except BodyTimeoutError:
            await self._answer_timeout(scope, receive, send)
            return
        except ClientGoneError:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _checked_body(
        self, scope: Scope, receive: Receive, protocol: str
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The body (binary V2 requests turned into JSON) and the headers to pass on."""
        body = await self._read_body(scope, receive)
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k not in (b"content-length", b"transfer-encoding")
        ]
        content_type = b""
        binary_length: bytes | None = None
        kept = []
        for name, value in headers:
            if name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif name == BINARY_HEADER:
                binary_length = value
            else:
                kept.append((name, value))
        if binary_length is not None and protocol == "v2":
            body = binary_request_as_json(body, binary_length)
        else:
            parse_json_strictly(body)
        if protocol == "v1":
            kept = _checked_cloudevent_headers(kept, body)
        # KServe's V1 decoder hands bodies of other content types (curl's form default,
        # text/plain, "application/json; charset=utf-8") to the model as bytes, and FastAPI
        # reads V2 bodies as JSON only for JSON types: the body is JSON, so say so.
        if protocol == "v2" or content_type not in JSON_MEDIA_TYPES:
            content_type = b"application/json"
        kept.append((b"content-type", content_type))
        kept.append((b"content-length", str(len(body)).encode()))
        return body, kept

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.strip().isdigit():
                    raise InvalidRequestError("the Content-Length header is not a number")
                check_payload_size(int(value), self.max_payload_bytes)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGoneError
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    check_payload_size(size, self.max_payload_bytes)  # chunked: no length
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise BodyTimeoutError from None
        return b"".join(chunks)

    async def _answer_timeout(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _json_response(
            408,
            f"the request body did not arrive within {self.body_timeout_seconds:g} s: send the "
            "whole body at once, with a Content-Length that matches it",
            close=True,
        )
        await response(scope, receive, send)


def _checked_cloudevent_headers(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> list[tuple[bytes, bytes]]:
    """Headers of a V1 request, checked as a binary-mode CloudEvent when they make one.

    KServe parses ``ce-*`` headers as a CloudEvent; attributes it cannot parse, and
    ``ce-contenttype`` (which makes it decode the JSON data twice and fail on the result), must
    not reach it. The body is JSON already, so ``ce-contenttype`` is dropped.
    """
    kept = [(k, v) for k, v in headers if k != b"ce-contenttype"]
    names = {k for k, _ in kept}
    if not {b"ce-specversion", b"ce-source", b"ce-type", b"ce-id"} <= names:
        return kept  # not a CloudEvent: KServe reads the body as plain JSON
    try:
        from_http({k.decode("latin-1"): v.decode("latin-1") for k, v in kept}, body, lambda x: x)
    except (GenericException, ValueError):
        raise InvalidRequestError(
            "the ce-* headers do not make a valid CloudEvent: send ce-specversion 1.0, ce-id, "
            "ce-source and ce-type (percent-encoded where not plain ASCII), or no ce-* headers"
        ) from None
    return kept


def _declares_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read already, then the client's own events."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect, for apps that listen for it

    return replay


# ---- error bodies --------------------------------------------------------------------------------


async def invalid_request_handler(_: Request, exc: Exception) -> JSONResponse:
    """Answer an ``InvalidRequestError`` with its status and message, KServe's error shape."""
    status = exc.status if isinstance(exc, InvalidRequestError) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)


async def validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 ``{"detail": [...]}`` as 400 ``{"error": ...}`` naming the first bad field.

    The message never echoes the input (a NaN or a lone surrogate could not be written back).
    """
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    if not errors:
        return _json_response(400, "the request is not valid: see the API reference")
    first = errors[0]
    where = _location(first.get("loc", ()))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return _json_response(400, f"{where}: {first.get('msg', 'is not valid')}{more}")


def _location(loc: Iterable[Any]) -> str:
    """``("body", "InferenceRequest", "inputs", 0, "shape")`` -> ``inputs[0].shape``."""
    parts = [p for p in loc if p != "body"]
    if (parts and isinstance(parts[0], str) and parts[0][:1].isupper()) or parts[:1] == ["bytes"]:
        parts = parts[1:]  # the member of a Union[Model, bytes] body FastAPI tried
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "body"


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's 404/405 as ``{"error": ...}`` saying which route does not exist."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 404
    if status == 404:
        message = f"no route {request.url.path}: see the Open Inference Protocol paths under /v2"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(getattr(exc, "detail", "")) or "the request cannot be served"
    headers = getattr(exc, "headers", None)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def internal_error_handler(_: Request, exc: Exception) -> JSONResponse:
    """An unexpected failure: a generic message (no exception text); the log has the rest."""
    log.error("request failed", exc_info=exc)
    return _json_response(500, "the server failed to answer this request; it has been logged")


async def not_implemented_handler(request: Request, exc: Exception) -> JSONResponse:
    """A feature this server does not offer (KServe answers 501): 404 naming the path."""
    return _json_response(404, f"{request.url.path} is not offered by this server")


# ---- model metadata ----------------------------------------------------------------------------


def model_metadata(model: Any) -> dict[str, Any]:
    """The OIP model metadata of a served model (``model.metadata()`` when it has one)."""
    describe = getattr(model, "metadata", None)
    if callable(describe):
        return describe()
    version = str(getattr(model, "version", "") or "")
    return {
        "name": model.name,
        "versions": [version] if version else [],
        "platform": "trending-now",
        "inputs": [],
        "outputs": [],
    }


def add_metadata_route(app: FastAPI, models: Sequence[Any]) -> None:
    """``GET /v2/models/{name}``: metadata with versions, platform and tensors (ahead of KServe's).

    KServe's own handler leaves ``versions`` out (``null``) and the platform empty.
    """
    by_name = {model.name: model for model in models}

    async def metadata(model_name: str) -> JSONResponse:
        model = by_name.get(model_name)
        if model is None:
            return _json_response(404, f"model {model_name} is not served here")
        return JSONResponse(model_metadata(model))

    app.add_api_route("/v2/models/{model_name}", metadata, methods=["GET"])
    app.router.routes.insert(0, app.router.routes.pop())  # before KServe's, added at start


def harden(
    app: FastAPI,
    *,
    max_payload_bytes: int,
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    metrics: ServingMetrics | None = None,
    served_versions: dict[str, str] | None = None,
) -> None:
    """Any service's FastAPI app: body deadline and cap, ``{"error": ...}`` bodies, no 422.

    Inference routes, if the app has any, also get the strict JSON check and the metrics.
    """
    app.add_middleware(
        InferenceGuard,
        max_payload_bytes=max_payload_bytes,
        metrics=metrics,
        served_versions=served_versions,
        body_timeout_seconds=body_timeout_seconds,
    )
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)


def install(
    app: FastAPI,
    *,
    max_payload_bytes: int,
    metrics: ServingMetrics | None,
    models: Iterable[Any] = (),
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
) -> None:
    """Add the guard, the metadata route and the error handlers to KServe's app (before start).

    Args:
        app: KServe's FastAPI app (``kserve.model_server.app``).
        max_payload_bytes: Largest request body.
        metrics: Where inference requests are counted.
        models: The served models (their ``name`` and ``version``).
        body_timeout_seconds: Longest time a client may take to send a request body.
    """
    models = list(models)
    harden(
        app,
        max_payload_bytes=max_payload_bytes,
        body_timeout_seconds=body_timeout_seconds,
        metrics=metrics,
        served_versions={m.name: str(m.version) for m in models if getattr(m, "version", "")},
    )
    if models:
        add_metadata_route(app, models)
    app.add_exception_handler(InvalidRequestError, invalid_request_handler)

    def own_the_last_resort() -> None:
        # KServe registers its handlers when the server starts, after this function ran; its
        # catch-all answers "<ExceptionClass> : <text>" and NotImplementedError a 501.
        app.exception_handlers[Exception] = internal_error_handler
        app.exception_handlers[NotImplementedError] = not_implemented_handler
        app.middleware_stack = None  # rebuilt with these handlers by the next request

    own_the_last_resort()
    app.router.on_startup.append(own_the_last_resort)


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
