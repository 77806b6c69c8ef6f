"""Payload logging: inference requests and responses as CloudEvents to a sink (the drift detector).

The events have the shape of KServe's own payload logger, so a sink written for KServe (or the
project's drift detector) reads them unchanged: binary-mode CloudEvents over HTTP POST with
``ce-type`` ``org.kubeflow.serving.inference.request`` / ``.response``, one ``ce-id`` shared by a
request and its response, ``ce-source``, the extensions ``ce-inferenceservicename``,
``ce-namespace``, ``ce-component``, ``ce-endpoint``, and the JSON payload as the body. Attribute
header values are percent-encoded as the CloudEvents HTTP binding (1.0.2, 3.1.3.2) requires, so a
client's request id with spaces or non-ASCII characters still travels (the SDK does not encode).
Given a token, HTTP sinks get ``Authorization: Bearer <token>``: the drift service refuses events
without it (KServe's own logger cannot send one).

The sink can also be an object store (``file:///dir`` or ``s3://bucket/prefix``): events are then
batched into JSON-lines objects, one structured-mode CloudEvent per line, written whole under
``<yyyy>/<mm>/<dd>/`` — for archiving payloads or scoring them later in bulk.

Logging never slows or fails a request: ``log_request``/``log_response`` only put the payload on
a bounded queue (dropping it when the queue is full); a background thread builds the events and
sends them. Every event not delivered (queue full, sink unreachable, non-2xx answer, a batch the
store refused) is counted and reported through ``on_drop``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlparse

import httpx
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from trending.data.privacy import mask_value

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PayloadLogTarget:
    """Where events go and how they name their origin.

    Attributes:
        sink_url: The HTTP endpoint receiving the events, or an object store URI
            (``file:///dir``, ``s3://bucket/prefix``) for batched JSON-lines objects.
        source: ``ce-source``: the URL (or URI reference) of the logging server.
        inference_service_name: ``ce-inferenceservicename``.
        namespace: ``ce-namespace`` (empty outside a cluster).
        component: ``ce-component``: ``predictor`` or ``transformer``.
        endpoint: ``ce-endpoint``: e.g. ``stable`` or ``canary`` (empty if not split).
    """

    sink_url: str
    source: str
    inference_service_name: str
    namespace: str = ""
    component: str = "predictor"
    endpoint: str = ""


_STOP = object()
# Printable ASCII except space, double quote and percent: left as is in ce-* header values.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')


def encode_header_value(value: str) -> str:
    """Percent-encode a CloudEvents attribute for an HTTP header (HTTP binding 3.1.3.2).

    Space, double quote, percent and everything outside printable ASCII become ``%XX`` of their
    UTF-8 bytes; ``urllib.parse.unquote`` gives the attribute back.
    """
    return quote(value, safe=_HEADER_SAFE)


SINK_SCHEMES = ("http", "https", "file", "s3")


def check_sink_url(url: str) -> None:
    """Raise ValueError unless ``url`` is a sink this module can write to."""
    parsed = urlparse(url)
    if parsed.scheme not in SINK_SCHEMES or not (parsed.netloc or parsed.path.strip("/")):
        raise ValueError(
            f"payload log sink {url!r}: use an http(s):// URL (e.g. the drift detector) or an "
            "object store, file:///dir or s3://bucket/prefix"
        )


class _Sink(Protocol):
    def add(self, event: CloudEvent) -> tuple[int, int]:
        """Take one event; return the events (delivered, dropped) doing so."""

    def flush(self) -> tuple[int, int]:
        """Write what is held; return the events (delivered, dropped)."""

    def seconds_to_flush(self) -> float | None:
        """Seconds until held events must be written (None: nothing held)."""

    def close(self) -> None:
        """Release connections."""


class _HttpSink:
    """POST each event in binary mode (KServe's logger format), with the sink's bearer token."""

    def __init__(
        self,
        url: str,
        timeout: float,
        transport: httpx.BaseTransport | None,
        token: str | None = None,
    ) -> None:
        self.url = url
        auth = {"authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout, transport=transport, headers=auth)

    def add(self, event: CloudEvent) -> tuple[int, int]:
        try:
            headers, body = to_binary(event)
            headers = {
                k: encode_header_value(v) if k.startswith("ce-") else v for k, v in headers.items()
            }
            response = self.client.post(self.url, headers=headers, content=body)
        except Exception as exc:  # the sink being down must never stop the sender
            log.warning("payload log sink %s unreachable (%s); event dropped", self.url, exc)
            return 0, 1
        if response.status_code >= 300:
            log.warning(
                "payload log sink %s answered %s; event dropped", self.url, response.status_code
            )
            return 0, 1
        return 1, 0

    def flush(self) -> tuple[int, int]:
        return 0, 0

    def seconds_to_flush(self) -> float | None:
        return None

    def close(self) -> None:
        self.client.close()


class _ObjectStoreSink:
    """Hold events and write them as one JSON-lines object per batch (structured CloudEvents).

    A batch is written when it holds ``batch_events`` events or its first event is
    ``batch_seconds`` old, and on close. Objects are written whole and create-only, under
    ``<yyyy>/<mm>/<dd>/<name>-<time>-<random>.jsonl``; a batch the store refuses is dropped.
    """

    def __init__(self, uri: str, name: str, batch_events: int, batch_seconds: float) -> None:
        from trending.registry.objectstore import open_store

        self.uri = uri
        self.store = open_store(uri)
        self.name = name
        self.batch_events = batch_events
        self.batch_seconds = batch_seconds
        self.lines: list[bytes] = []
        self.first_at = 0.0

    def add(self, event: CloudEvent) -> tuple[int, int]:
        if not self.lines:
            self.first_at = time.monotonic()
        self.lines.append(to_structured(event)[1])
        return self.flush() if len(self.lines) >= self.batch_events else (0, 0)

    def flush(self) -> tuple[int, int]:
        lines, self.lines = self.lines, []
        if not lines:
            return 0, 0
        now = datetime.now(UTC)
        key = f"{now:%Y/%m/%d}/{self.name}-{now:%H%M%S}-{uuid.uuid4().hex[:12]}.jsonl"
        try:
            self.store.put_bytes(key, b"\n".join(lines) + b"\n", if_none_match=True)
        except Exception as exc:  # the store being down must never stop the sender
            log.warning(
                "payload log store %s refused a batch (%s); %d events dropped",
                self.uri,
                exc,
                len(lines),
            )
            return 0, len(lines)
        return len(lines), 0

    def seconds_to_flush(self) -> float | None:
        if not self.lines:
            return None
        return max(0.0, self.first_at + self.batch_seconds - time.monotonic())

    def close(self) -> None:
        pass


class PayloadLogger:
    """Send request/response payloads as CloudEvents from a background thread.

    Args:
        target: Sink URL and event attributes.
        max_queue: Events held while the sink is slow; more are dropped (and counted).
        timeout: Seconds per HTTP delivery attempt.
        on_drop: Called with the number of events dropped (e.g. to increment a metric).
        transport: An httpx transport (tests); None for real HTTP.
        batch_events: Object store sinks: most events per object.
        batch_seconds: Object store sinks: longest an event waits before its batch is written.
        token: HTTP sinks: sent as ``Authorization: Bearer <token>`` (the drift detector
            refuses events without it when it is configured with one).
    """

    def __init__(
        self,
        target: PayloadLogTarget,
        *,
        max_queue: int = 1000,
        timeout: float = 2.0,
        on_drop: Callable[[int], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        batch_events: int = 500,
        batch_seconds: float = 10.0,
        token: str | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        if batch_events < 1 or batch_seconds <= 0:
            raise ValueError(
                f"batch_events must be at least 1 and batch_seconds above 0, got {batch_events} "
                f"and {batch_seconds}"
            )
        check_sink_url(target.sink_url)
        self.target = target
        self.timeout = timeout
        self.batch_events = batch_events
        self.batch_seconds = batch_seconds
        self.on_drop = on_drop
        self._transport = transport
        self._token = token
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0

    def start(self) -> PayloadLogger:
        """Start the sender thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_forever, name="payload-log", daemon=True
                )
                self._thread.start()
        return self

    def log_request(self, event_id: str, data: Any, *, model_id: str = "") -> None:
        """Queue a request payload; never blocks, never raises."""
        self._offer(REQUEST_TYPE, event_id, data, model_id)

    def log_response(self, event_id: str, data: Any, *, model_id: str = "") -> None:
        """Queue the response to the request logged with the same ``event_id``."""
        self._offer(RESPONSE_TYPE, event_id, data, model_id)

    def _offer(self, ce_type: str, event_id: str, data: Any, model_id: str) -> None:
        try:
            self._queue.put_nowait((ce_type, event_id, data, model_id, datetime.now(UTC)))
        except queue.Full:
            self._drop(1)

    def _drop(self, count: int) -> None:
        with self._lock:
            self.dropped += count
        if self.on_drop is not None:
            try:
                self.on_drop(count)
            except Exception:  # a metric failing must not stop logging
                log.exception("payload log on_drop callback failed")

    def event(
        self,
        ce_type: str,
        event_id: str,
        data: Any,
        model_id: str = "",
        time: datetime | None = None,
    ) -> CloudEvent:
        """The CloudEvent for one payload (what the sender thread posts)."""
        attributes = {
            "type": ce_type,
            "source": self.target.source,
            "id": event_id,
            "time": (time or datetime.now(UTC)).isoformat(),
            "inferenceservicename": self.target.inference_service_name,
            "namespace": self.target.namespace,
            "component": self.target.component,
            "endpoint": self.target.endpoint,
            "datacontenttype": "application/json",
        }
        if model_id:
            attributes["modelid"] = model_id
        # Personal data in request texts never reaches a payload log (trending.data.privacy).
        return CloudEvent(attributes, mask_value(data))

    def _open_sink(self) -> _Sink:
        if urlparse(self.target.sink_url).scheme in ("http", "https"):
            return _HttpSink(self.target.sink_url, self.timeout, self._transport, self._token)
        host = urlparse(self.target.source).hostname or "server"
        name = "-".join(p for p in (self.target.component, self.target.endpoint, host) if p)
        return _ObjectStoreSink(self.target.sink_url, name, self.batch_events, self.batch_seconds)

    def _send_forever(self) -> None:
        try:
            sink: _Sink | None = self._open_sink()
        except Exception:  # e.g. no credentials for the store: drop, count, keep serving
            log.exception("payload log sink %s cannot be opened; dropping", self.target.sink_url)
            sink = None
        try:
            while True:
                wait = sink.seconds_to_flush() if sink is not None else None
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:  # a held batch is due
                    self._count(*sink.flush())  # type: ignore[union-attr]
                    continue
                if item is _STOP:
                    if sink is not None:
                        self._count(*sink.flush())
                    return
                if sink is None:
                    self._drop(1)
                else:
                    self._count(*sink.add(self.event(*item)))
        finally:
            if sink is not None:
                sink.close()

    def _count(self, sent: int, dropped: int) -> None:
        if sent:
            with self._lock:
                self.sent += sent
        if dropped:
            self._drop(dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("payload log queue still full after %.1f s; stopping anyway", timeout)
        thread.join(timeout)
        self._thread = None
