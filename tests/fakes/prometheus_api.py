"""A stub Prometheus HTTP API answering the canary policy's instant queries from fixed numbers.

``GET /api/v1/query?query=...`` is matched against the query shapes
``trending.monitoring.prom.version_stats`` and ``shadow_stats`` send; the ``version="N"`` matcher
picks the numbers of that version. A query of any other shape answers a Prometheus error, so a
changed query fails the test instead of silently reading nothing.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class VersionNumbers:
    """What one version did over any window."""

    requests: float = 400.0
    errors: float = 0.0
    p95_seconds: float = 0.05
    genre_counts: dict[str, float] = field(
        default_factory=lambda: {"Drama": 200.0, "Comedy": 150.0, "Thriller": 100.0}
    )
    mean_score: float = 0.6


_VERSION = re.compile(r'version="(\d+)"')


class StubPrometheus:
    """Serves ``numbers[version]`` on 127.0.0.1 and records every query."""

    def __init__(self, numbers: dict[int, VersionNumbers]) -> None:
        self.numbers = numbers
        self.queries: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, query: str) -> dict[str, Any]:
        """The JSON body Prometheus would give for ``query``."""
        match = _VERSION.search(query)
        n = self.numbers.get(int(match[1])) if match else None
        if n is None:
            return {"status": "error", "errorType": "bad_data", "error": f"unknown: {query}"}

        def scalar(value: float | None) -> dict[str, Any]:
            result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
            return {"status": "success", "data": {"resultType": "vector", "result": result}}

        def by_genre(values: dict[str, float]) -> dict[str, Any]:
            result = [{"metric": {"genre": g}, "value": [0, str(v)]} for g, v in values.items()]
            return {"status": "success", "data": {"resultType": "vector", "result": result}}

        if "trending_requests_total" in query:
            return scalar(n.errors if 'code!~"2.."' in query else n.requests)
        if "trending_request_duration_seconds_bucket" in query:
            return scalar(n.p95_seconds)
        if "trending_predictions_total" in query:
            return by_genre(n.genre_counts)
        if "trending_prediction_score_count" in query:
            return by_genre(n.genre_counts)
        if "trending_prediction_score_sum" in query:
            return by_genre({g: c * n.mean_score for g, c in n.genre_counts.items()})
        if "trending_feedback_jaccard" in query or "trending_shadow_" in query:
            return scalar(None)  # no labelled feedback, no shadow: those checks are skipped
        return {"status": "error", "errorType": "bad_data", "error": f"unknown: {query}"}

    def __enter__(self) -> StubPrometheus:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                stub.queries.append(query)
                data = json.dumps(
                    stub.answer(query)
                    if url.path == "/api/v1/query"
                    else {"status": "error", "errorType": "not_found", "error": url.path}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
