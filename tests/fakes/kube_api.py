"""The smallest Kubernetes API emulation the canary controller needs, recording every request.

This is the one place the project emulates the kube-apiserver (ARCHITECTURE.md: no cluster runs
on these machines). It serves exactly what ``serving.canary.kube.KubeInferenceServiceApi`` calls,
over real HTTP, so the real ``kubernetes`` client builds and sends the requests:

- ``GET  /apis/serving.kserve.io/v1beta1/namespaces/<ns>/inferenceservices/<name>``
- ``PATCH`` of the same path with ``Content-Type: application/merge-patch+json``: RFC 7386
  applied to the stored object; a ``metadata.resourceVersion`` in the patch that differs from the
  stored one is a 409 Conflict (optimistic concurrency, as the API server does); every accepted
  patch bumps ``resourceVersion`` and ``generation``.

Anything else (other paths, other verbs, other patch types) answers 404/405/415 with a
``Status`` body and is recorded too, so a test sees every call the controller made. What is not
emulated: admission webhooks and KServe's own defaulting/validation (the tests judge bodies and
results with the kserve SDK models instead), status updates, watches, discovery, authentication.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_ISVC_PATH = re.compile(
    r"^/apis/serving\.kserve\.io/v1beta1/namespaces/(?P<ns>[^/]+)/inferenceservices/(?P<name>[^/]+)$"
)
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge key by key, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


class FakeKubeApi:
    """Holds InferenceServices by (namespace, name) and serves them on 127.0.0.1."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._version = 100

    def put(self, isvc: dict[str, Any]) -> None:
        """Store an object as if ``kubectl apply`` (or ``helm install``) had created it."""
        obj = copy.deepcopy(isvc)
        meta = obj.setdefault("metadata", {})
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        meta.setdefault("generation", 1)
        self.objects[(meta.get("namespace", "default"), meta["name"])] = obj

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        """A copy of the stored object."""
        return copy.deepcopy(self.objects[(namespace, name)])

    def patches(self) -> list[Recorded]:
        """The PATCH requests, in order."""
        return [r for r in self.requests if r.method == "PATCH"]

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKubeApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._answer(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": message,
                        "reason": reason,
                        "code": code,
                    },
                )

            def _handle(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                ctype = self.headers.get("Content-Type")
                with fake.lock:
                    fake.requests.append(
                        Recorded(self.command, url.path, parse_qs(url.query), ctype, body)
                    )
                    match = _ISVC_PATH.match(url.path)
                    if match is None:
                        return self._status(404, "NotFound", f"{url.path} is not emulated")
                    key = (match["ns"], match["name"])
                    if key not in fake.objects:
                        return self._status(
                            404, "NotFound", f'inferenceservices "{key[1]}" not found'
                        )
                    current = fake.objects[key]
                    if self.command == "GET":
                        return self._answer(200, current)
                    if self.command != "PATCH":
                        return self._status(405, "MethodNotAllowed", f"{self.command} not emulated")
                    if ctype != MERGE_PATCH:
                        return self._status(415, "UnsupportedMediaType", f"{ctype} not emulated")
                    wanted = ((body or {}).get("metadata") or {}).get("resourceVersion")
                    if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                        return self._status(409, "Conflict", "the object has been modified")
                    updated = apply_merge_patch(current, body)
                    fake._version += 1
                    updated["metadata"]["resourceVersion"] = str(fake._version)
                    updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
                    fake.objects[key] = updated
                    return self._answer(200, updated)

            do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default).
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` pointed at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)
