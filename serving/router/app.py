"""The router: splits traffic between stable and canary, mirrors copies to a shadow, counts all.

The split comes from a JSON file (``trending.rollout.canary.TrafficSplit``) that the canary controller and
the CLI rewrite atomically; the router re-reads it when its modification time changes. Every
answer is counted under the version that produced it, with the metric names the predictor uses,
so Prometheus can compare stable with canary (see docs/canary.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from serving.router.split import TrafficSplit, Upstream, read_split
from trending.rollout.shadow import ShadowComparisonError, compare_predictions, jaccard

log = logging.getLogger("trending.router")
_SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
_FEEDBACK_MEMORY = 10_000
_PENDING_EVENTS = 1_000


class RouterMetrics:
    """Per-version metrics of everything the router forwards (its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "trending_requests_total", "Requests by the version that answered.",
            ["model", "version", "protocol", "code"], registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "trending_request_duration_seconds", "Upstream round trip by version.",
            ["model", "version"], registry=r,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )  # fmt: skip
        self.predictions = Counter(
            "trending_predictions_total", "Predicted genre labels by version.",
            ["model", "version", "genre"], registry=r,
        )  # fmt: skip
        self.scores = Histogram(
            "trending_prediction_score", "Per-genre scores by version.",
            ["model", "version", "genre"], registry=r, buckets=_SCORE_BUCKETS,
        )  # fmt: skip
        self.errors = Counter(
            "trending_errors_total", "Failed requests by version and kind.",
            ["model", "version", "kind"], registry=r,
        )  # fmt: skip
        self.feedback = Histogram(
            "trending_feedback_jaccard", "Agreement of predictions with labelled feedback.",
            ["model", "version"], registry=r, buckets=_SCORE_BUCKETS,
        )  # fmt: skip
        self.shadow_agreement = Histogram(
            "trending_shadow_agreement", "Genre-set agreement of the shadow with stable.",
            ["model", "version"], registry=r, buckets=_SCORE_BUCKETS,
        )  # fmt: skip
        self.shadow_delta = Histogram(
            "trending_shadow_score_delta", "Mean absolute score difference shadow vs stable.",
            ["model", "version"], registry=r, buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
        )  # fmt: skip
        self.shadow_results = Counter(
            "trending_shadow_comparisons_total", "Shadow comparisons by result.",
            ["model", "version", "result"], registry=r,
        )  # fmt: skip

    def observe_answer(self, model: str, version: int, body: Any) -> list[list[str]]:
        """Count the genres and scores of a V1 answer; returns the genre sets."""
        v = str(version)
        sets: list[list[str]] = []
        for p in (body or {}).get("predictions", []) if isinstance(body, dict) else []:
            if not isinstance(p, dict):
                continue
            genres = [str(g) for g in p.get("genres", [])]
            sets.append(genres)
            for g in genres:
                self.predictions.labels(model, v, g).inc()
            for g, s in (p.get("scores") or {}).items():
                self.scores.labels(model, v, str(g)).observe(float(s))
        return sets

    def observe_shadow(self, model: str, version: int, stable: Any, shadow: Any) -> None:
        """Compare a shadow answer with the stable one and record the outcome."""
        v = str(version)
        try:
            result = compare_predictions(stable, shadow)
        except ShadowComparisonError as exc:
            log.warning("shadow %s answer not comparable: %s", v, exc)
            self.shadow_results.labels(model, v, "incomparable").inc()
            return
        self.shadow_agreement.labels(model, v).observe(result.agreement)
        self.shadow_delta.labels(model, v).observe(result.score_delta)
        self.shadow_results.labels(model, v, "agree" if result.agreement == 1 else "differ").inc()


class SplitFile:
    """The split file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mtime: int | None = None
        self._split: TrafficSplit | None = None

    def current(self) -> TrafficSplit:
        """The split in force (re-validated after every change of the file)."""
        mtime = self.path.stat().st_mtime_ns
        if self._split is None or mtime != self._mtime:
            self._split = read_split(self.path)
            self._mtime = mtime
        return self._split


def create_app(
    split_path: Path, *, upstream_timeout: float = 30.0, seed: int | None = None
) -> FastAPI:
    """Build the router app.

    Args:
        split_path: The traffic split file (must exist and be valid at start).
        upstream_timeout: Seconds to wait for a model server.
        seed: Seed of the split's random choice (tests); None = system randomness.
    """
    split_file = SplitFile(split_path)
    split_file.current()  # refuse to start on a missing or invalid split
    metrics = RouterMetrics()
    rng = random.Random(seed)  # noqa: S311 - traffic sampling, not security
    recent: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
    pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
    background: set[asyncio.Task[None]] = set()
    app = FastAPI(title="trending router")
    app.state.metrics = metrics
    client = httpx.AsyncClient(timeout=upstream_timeout, limits=httpx.Limits(max_connections=64))

    @app.on_event("shutdown")
    async def _close() -> None:  # pragma: no cover - process exit
        await client.aclose()

    def remember(titles: list[Any], version: int, sets: list[list[str]]) -> None:
        for title, genres in zip(titles, sets, strict=False):
            if isinstance(title, dict) and title.get("title_id"):
                recent[str(title["title_id"])] = (version, genres)
                recent.move_to_end(str(title["title_id"]))
        while len(recent) > _FEEDBACK_MEMORY:
            recent.popitem(last=False)

    async def shadow_copy(
        model: str, shadow: Upstream, path: str, body: bytes, stable: Any
    ) -> None:
        try:
            response = await client.post(
                f"{shadow.url}{path}", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            metrics.shadow_results.labels(model, str(shadow.version), "error").inc()
            log.warning("shadow %s unreachable: %s", shadow.version, exc)
            return
        if response.status_code != 200:
            metrics.shadow_results.labels(model, str(shadow.version), "error").inc()
            return
        metrics.observe_shadow(model, shadow.version, stable, response.json())

    def schedule(coro: Any) -> None:
        task = asyncio.create_task(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    async def forward(request: Request, path: str, protocol: str) -> Response:
        split = split_file.current()
        body = await request.body()
        use_canary = split.canary is not None and rng.random() * 100 < split.canary_percent
        target = split.canary if use_canary and split.canary is not None else split.stable
        version = str(target.version)
        started = time.perf_counter()
        try:
            upstream = await client.post(
                f"{target.url}{path}", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            metrics.requests.labels(split.model, version, protocol, "502").inc()
            metrics.errors.labels(split.model, version, "upstream_unreachable").inc()
            return JSONResponse(
                {"error": f"model server for version {version} at {target.url} unreachable: {exc}"},
                status_code=502,
            )
        metrics.duration.labels(split.model, version).observe(time.perf_counter() - started)
        code = str(upstream.status_code)
        metrics.requests.labels(split.model, version, protocol, code).inc()
        if upstream.status_code != 200:
            metrics.errors.labels(split.model, version, f"http_{code}").inc()
        elif protocol == "v1":
            answer = upstream.json()
            sets = metrics.observe_answer(split.model, target.version, answer)
            with contextlib.suppress(ValueError, AttributeError):
                remember(json.loads(body).get("instances", []), target.version, sets)
            shadow = split.shadow
            if (
                shadow is not None
                and target is split.stable
                and rng.random() * 100 < split.shadow_percent
            ):
                schedule(shadow_copy(split.model, shadow, path, body, answer))
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "application/json"),
            headers={"x-trending-version": version},
        )

    @app.post("/v1/models/{model}:predict")
    async def predict_v1(model: str, request: Request) -> Response:
        return await forward(request, f"/v1/models/{model}:predict", "v1")

    @app.post("/v2/models/{model}/infer")
    async def infer_v2(model: str, request: Request) -> Response:
        return await forward(request, f"/v2/models/{model}/infer", "v2")

    @app.post("/feedback")
    async def feedback(request: Request) -> JSONResponse:
        try:
            data = await request.json()
            title_id, genres = str(data["title_id"]), list(data["genres"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"error": 'send {"title_id": "...", "genres": ["..."]} for a title predicted '
                          "through this router"},
                status_code=400,
            )  # fmt: skip
        if title_id not in recent:
            return JSONResponse(
                {"error": f"no recent prediction for title_id={title_id!r}; feedback must follow "
                          "a prediction made through this router"},
                status_code=404,
            )  # fmt: skip
        version, predicted = recent[title_id]
        score = jaccard(predicted, genres)
        metrics.feedback.labels(split_file.current().model, str(version)).observe(score)
        return JSONResponse({"version": version, "jaccard": score})

    @app.post("/shadow/events")
    async def logger_event(request: Request) -> Response:
        """KServe logger sink: pair request and response CloudEvents by id, replay to the shadow."""
        event_id, kind = request.headers.get("ce-id"), request.headers.get("ce-type", "")
        if not event_id or not kind.startswith("org.kubeflow.serving.inference."):
            return JSONResponse(
                {"error": "expected a KServe logger CloudEvent (ce-id and ce-type "
                          "org.kubeflow.serving.inference.request|response headers)"},
                status_code=400,
            )  # fmt: skip
        part = "request" if kind.endswith(".request") else "response"
        entry = pending.setdefault(event_id, {})
        entry[part] = await request.body()
        while len(pending) > _PENDING_EVENTS:
            pending.popitem(last=False)
        split = split_file.current()
        if "request" in entry and "response" in entry and split.shadow is not None:
            pending.pop(event_id, None)
            try:
                stable_answer = json.loads(entry["response"])
            except ValueError:
                return Response(status_code=202)
            path = f"/v1/models/{split.model}:predict"
            schedule(shadow_copy(split.model, split.shadow, path, entry["request"], stable_answer))
        return Response(status_code=202)

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        split = split_file.current()
        return JSONResponse({"ready": True, "stable": split.stable.version,
                             "canary": split.canary.version if split.canary else None,
                             "canary_percent": split.canary_percent})  # fmt: skip

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
