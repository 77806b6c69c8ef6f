"""A recording stand-in for the KFP v2beta1 REST API: the requests ``kfp.Client`` makes, answered.

No KFP API server runs on these machines. This endpoint answers the calls the project makes
(health, experiments, pipelines and versions by name, runs, recurring runs) with the shapes of
KFP's own API, and records every request, so a test can judge each body with ``kfp_server_api``'s
models (:func:`as_model`): what the server would deserialize is what the test checks.

Its one emulation: list filters are honoured only for ``display_name EQUALS`` (all the client
sends here); ids are ``<kind>-<n>``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/apis/v2beta1"


@dataclass
class Recorded:
    """One request as received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


def as_model(body: Any, model: str) -> Any:
    """``body`` deserialized into the ``kfp_server_api`` model named ``model`` (validated)."""
    import kfp_server_api

    client = kfp_server_api.ApiClient()
    return client._ApiClient__deserialize(body, model)  # the client's own deserializer


def _matches(item: dict[str, Any], query: dict[str, list[str]]) -> bool:
    raw = query.get("filter", [""])[0]
    if not raw:
        return True
    for predicate in json.loads(raw).get("predicates", []):
        equals = predicate.get("operation") in ("EQUALS", 1)  # the client sends the enum number
        wanted = predicate.get("string_value", predicate.get("stringValue"))
        if predicate.get("key") == "display_name" and equals and item.get("display_name") != wanted:
            return False
    return True


@dataclass
class FakeKfpApi:
    """Serve on loopback (``with FakeKfpApi() as kfp: kfp.url``); seed uploads with :meth:`upload`."""

    requests: list[Recorded] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    recurring_runs: list[dict[str, Any]] = field(default_factory=list)
    refuse_runs: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def upload(self, name: str, version_label: str) -> tuple[str, str]:
        """Pretend ``trending pipeline upload --version version_label`` ran; return the ids."""
        pipeline = next((p for p in self.pipelines if p["display_name"] == name), None)
        if pipeline is None:
            pipeline = {"pipeline_id": f"pipeline-{len(self.pipelines) + 1}", "display_name": name}
            self.pipelines.append(pipeline)
        versions = self.versions.setdefault(pipeline["pipeline_id"], [])
        version = {
            "pipeline_id": pipeline["pipeline_id"],
            "pipeline_version_id": f"version-{sum(map(len, self.versions.values())) + 1}",
            "display_name": f"{name}-{version_label}",
        }
        versions.insert(0, version)  # newest first, as "created_at desc"
        return pipeline["pipeline_id"], version["pipeline_version_id"]

    def recorded(self, method: str, path: str) -> list[Recorded]:
        """The requests of one method and path (without the API prefix)."""
        return [r for r in self.requests if r.method == method and r.path == PREFIX + path]

    @property
    def url(self) -> str:
        """Base URL (the ``--host`` of the CLI)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        """The API's answer to one request."""
        route = path.removeprefix(PREFIX)
        if method == "GET" and route == "/healthz":
            return 200, {"multi_user": False}
        if route == "/experiments":
            if method == "GET":
                found = [e for e in self.experiments if _matches(e, query)]
                return 200, {"experiments": found, "total_size": len(found)}
            experiment = {**body, "experiment_id": f"experiment-{len(self.experiments) + 1}"}
            self.experiments.append(experiment)
            return 200, experiment
        if method == "GET" and route == "/pipelines":
            found = [p for p in self.pipelines if _matches(p, query)]
            return 200, {"pipelines": found or None, "total_size": len(found)}
        if method == "GET" and route.startswith("/pipelines/") and route.endswith("/versions"):
            pipeline_id = route.split("/")[2]
            found = [v for v in self.versions.get(pipeline_id, []) if _matches(v, query)]
            size = int(query.get("page_size", ["10"])[0] or 10)
            return 200, {"pipeline_versions": found[:size] or None, "total_size": len(found)}
        if method == "POST" and route == "/runs":
            if self.refuse_runs:
                return 503, {"error": "unavailable", "code": 14, "message": "unavailable"}
            run = {**body, "run_id": f"run-{len(self.runs) + 1}", "state": "PENDING"}
            self.runs.append(run)
            return 200, run
        if method == "POST" and route == "/recurringruns":
            job = {**body, "recurring_run_id": f"recurring-{len(self.recurring_runs) + 1}"}
            self.recurring_runs.append(job)
            return 200, job
        return 404, {"error": f"not emulated: {method} {path}", "code": 5, "message": "not found"}

    def __enter__(self) -> FakeKfpApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = parse_qs(parts.query)
                with fake._lock:
                    fake.requests.append(Recorded(self.command, parts.path, query, body))
                    code, answer = fake.answer(self.command, parts.path, query, body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default).
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
