"""Payload logging: inference requests and responses as CloudEvents to a sink (the drift detector).

The events have the shape of KServe's own payload logger, so a sink written for KServe (or the
project's drift detector) reads them unchanged: binary-mode CloudEvents over HTTP POST with
``ce-type`` ``org.kubeflow.serving.inference.request`` / ``.response``, one ``ce-id`` shared by a
request and its response, ``ce-source``, the extensions ``ce-inferenceservicename``,
``ce-namespace``, ``ce-component``, ``ce-endpoint``, and the JSON payload as the body. Attribute
header values are percent-encoded as the CloudEvents HTTP binding (1.0.2, 3.1.3.2) requires, so a
client's request id with spaces or non-ASCII characters still travels (the SDK does not encode).

Logging never slows or fails a request: ``log_request``/``log_response`` only put the payload on
a bounded queue (dropping it when the queue is full); a background thread builds the events and
sends them. Every event not delivered (queue full, sink unreachable, non-2xx answer) is counted
and reported through ``on_drop``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PayloadLogTarget:
    """Where events go and how they name their origin.

    Attributes:
        sink_url: The HTTP endpoint receiving the events.
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


class PayloadLogger:
    """Send request/response payloads as CloudEvents from a background thread.

    Args:
        target: Sink URL and event attributes.
        max_queue: Events held while the sink is slow; more are dropped (and counted).
        timeout: Seconds per HTTP delivery attempt.
        on_drop: Called with the number of events dropped (e.g. to increment a metric).
        transport: An httpx transport (tests); None for real HTTP.
    """

    def __init__(
        self,
        target: PayloadLogTarget,
        *,
        max_queue: int = 1000,
        timeout: float = 2.0,
        on_drop: Callable[[int], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        if not target.sink_url.startswith(("http://", "https://")):
            raise ValueError(
                f"payload log sink {target.sink_url!r} must be an http:// or https:// URL"
            )
        self.target = target
        self.timeout = timeout
        self.on_drop = on_drop
        self._transport = transport
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
        return CloudEvent(attributes, data)

    def _send_forever(self) -> None:
        with httpx.Client(timeout=self.timeout, transport=self._transport) as client:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                ce_type, event_id, data, model_id, time = item
                try:
                    headers, body = to_binary(self.event(ce_type, event_id, data, model_id, time))
                    headers = {
                        k: encode_header_value(v) if k.startswith("ce-") else v
                        for k, v in headers.items()
                    }
                    response = client.post(self.target.sink_url, headers=headers, content=body)
                    delivered = response.status_code < 300
                    if not delivered:
                        log.warning(
                            "payload log sink %s answered %s; event dropped",
                            self.target.sink_url,
                            response.status_code,
                        )
                except Exception as exc:  # the sink being down must never stop the sender
                    log.warning(
                        "payload log sink %s unreachable (%s); event dropped",
                        self.target.sink_url,
                        exc,
                    )
                    delivered = False
                if delivered:
                    with self._lock:
                        self.sent += 1
                else:
                    self._drop(1)

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
