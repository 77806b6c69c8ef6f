"""KServe transformer: ``{title_id}`` requests -> Feast online features -> the predictor.

On a cluster the online features come from the Feast feature server the chart deploys
(``feast serve``, in front of Redis): :class:`FeatureServerFeatures` asks its
``/get-online-features`` endpoint by feature service, so the transformer needs neither the Feast
registry nor a writable state folder. Locally it reads the Feast store directly
(``TitleFeatureStore``). :func:`open_online_features` picks one. The features go on to the
predictor through :class:`PredictorClient` (aiohttp), not KServe's httpx client: see its docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
import orjson
from kserve import InferRequest, Model
from kserve.model import append_forwardable_headers
from kserve.predictor_config import PredictorConfig

from serving.predictor.http import note_error
from trending.features.featurize import FEATURE_COLUMNS
from trending.features.store import FEATURE_SERVICE
from trending.modelling.bundle.batching import MicroBatcher
from trending.modelling.bundle.inference import (
    DEFAULT_MAX_INSTANCES,
    InvalidRequestError,
    UnknownTitleError,
    parse_title_ids,
)


class OnlineFeatures(Protocol):
    """What the transformer needs from the feature store (``TitleFeatureStore``)."""

    def online(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        """Online features per id, in order; None for an unknown id."""
        ...


class PredictorUnavailableError(RuntimeError):
    """The predictor failed or could not be reached (answered as 502)."""

    status = 502


class FeatureServerUnavailableError(PredictorUnavailableError):
    """The feature server failed or could not be reached (answered as 502, like the predictor)."""


class FeatureServerFeatures:
    """Online features from Feast's feature server, by feature service (the cluster's path).

    Args:
        url: The feature server, e.g. ``http://trending-feature-server:6566``.
        feature_service: The Feast feature service the model was trained on.
        timeout: Seconds per request.
    """

    def __init__(self, url: str, feature_service: str = FEATURE_SERVICE, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"feature server URL {url!r}: use http://host:port")
        self.url = url.rstrip("/")
        self.feature_service = feature_service
        self.client = httpx.Client(timeout=timeout)

    def online(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        """Online features per id, in order; None for an id the store does not know.

        Raises:
            FeatureServerUnavailableError: The server is unreachable or answered an error.
        """
        request = {"feature_service": self.feature_service, "entities": {"title_id": title_ids}}
        try:
            response = self.client.post(f"{self.url}/get-online-features", json=request)
            response.raise_for_status()
            body = response.json()
            columns = dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))
        except httpx.HTTPStatusError as exc:
            raise FeatureServerUnavailableError(
                f"the feature server at {self.url} answered {exc.response.status_code}: "
                f"{exc.response.text[:300]}"
            ) from None
        except httpx.TransportError as exc:
            raise FeatureServerUnavailableError(
                f"the feature server at {self.url} is unreachable ({exc}); check "
                "TRENDING_FEATURE_SERVER_URL"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise FeatureServerUnavailableError(
                f"the feature server at {self.url} answered an unexpected body ({exc})"
            ) from None
        missing = [c for c in FEATURE_COLUMNS if c not in columns]
        if missing:
            raise FeatureServerUnavailableError(
                f"feature service {self.feature_service} on {self.url} lacks {missing}: apply "
                "the feature repository the model was trained with"
            )
        rows: list[dict[str, Any] | None] = []
        for i, title_id in enumerate(title_ids):
            # Feast's Redis store answers an unknown key as PRESENT with a null value (epoch
            # timestamp); the SQLite store as NOT_FOUND. Either way the title is unknown.
            plot = columns["plot"]
            if plot["statuses"][i] != "PRESENT" or plot["values"][i] is None:
                rows.append(None)
                continue
            rows.append(
                {"title_id": title_id, **{c: columns[c]["values"][i] for c in FEATURE_COLUMNS}}
            )
        return rows


class PredictorClient:
    """V1 ``:predict`` calls to the predictor over one pool of keep-alive aiohttp connections.

    KServe's own client (httpx) spent ~1.1 ms of CPU a request in the transformer, half of its
    per-request CPU (py-spy at 200 req/s; httpcore even re-searches ``sys.path`` for ``sniffio``
    on every call when it is not installed). aiohttp parses in C; the transformer's per-request
    CPU drops accordingly (benchmarks/results/transformer.json). Errors keep the transformer's
    contract: the predictor's 4xx stay 4xx, its failures and unreachability become 502.

    Args:
        config: KServe's predictor settings (``--predictor_host``, ``--predictor_use_ssl``,
            ``--predictor_request_timeout_seconds``, ``--predictor_request_retries``).
    """

    def __init__(self, config: PredictorConfig) -> None:
        scheme = "https" if config.predictor_use_ssl else "http"
        self.host = config.predictor_host
        self.base_url = f"{scheme}://{self.host}"
        self.timeout = aiohttp.ClientTimeout(total=config.predictor_request_timeout_seconds)
        self.retries = max(0, int(config.predictor_request_retries or 0))
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            )
        return self._session

    async def predict(
        self, model: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        """The predictor's V1 answer to ``payload``.

        Raises:
            InvalidRequestError: The predictor rejected the features (its 4xx status).
            PredictorUnavailableError: It failed (5xx) or could not be reached (502).
        """
        url = f"{self.base_url}/v1/models/{model}:predict"
        body = orjson.dumps(payload)
        headers = {**headers, "content-type": "application/json"}
        for attempt in range(self.retries + 1):
            try:
                async with self._open().post(url, data=body, headers=headers) as response:
                    content = await response.read()
                    status = response.status
                break
            except TimeoutError:  # before ClientError: aiohttp's timeouts are both
                note_error("predictor_unreachable")
                raise PredictorUnavailableError(
                    f"the predictor at {self.host} did not answer within "
                    f"{self.timeout.total} s (--predictor_request_timeout_seconds)"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                # Only a failed connection is retried: a sent request may have been served.
                if attempt < self.retries:
                    continue
                note_error("predictor_unreachable")
                raise PredictorUnavailableError(
                    f"the predictor at {self.host} is unreachable ({exc}); check --predictor_host"
                ) from None
            except aiohttp.ClientError as exc:  # the connection broke, or the answer did
                note_error("predictor_failed")
                raise PredictorUnavailableError(
                    f"the predictor at {self.host} broke off its answer ({exc})"
                ) from None
        if status < 400:
            try:
                return orjson.loads(content)
            except orjson.JSONDecodeError:
                note_error("predictor_failed")
                raise PredictorUnavailableError(
                    f"the predictor answered {status} with a body that is not JSON"
                ) from None
        message = _error_message(content)
        if status < 500:
            error = InvalidRequestError(f"the predictor rejected the features: {message}")
            error.status = status
            note_error("invalid_features")
            raise error
        note_error("predictor_failed")
        raise PredictorUnavailableError(f"the predictor answered {status}: {message}")

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()


def _error_message(content: bytes) -> str:
    """The ``error`` of a JSON error body, else the body's text (cut short)."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return content[:300].decode("utf-8", "replace")


def open_online_features(
    feature_server_url: str | None, repo: Path, state_dir: Path
) -> OnlineFeatures:
    """The feature server when a URL is configured (cluster), else the local Feast store."""
    if feature_server_url:
        return FeatureServerFeatures(feature_server_url)
    from trending.features.store import TitleFeatureStore

    return TitleFeatureStore(repo, state_dir)


class FeastTransformer(Model):
    """Look titles up by id in the Feast online store and forward their features (V1).

    Args:
        name: The model name; the predictor serves the same name.
        open_store: Opens the feature store (called once, in ``load``).
        max_instances: Most title ids per request.
        lookup_batch_size: Most title ids in one online read. Concurrent requests' ids share one
            read (one round trip to the online store): the reads run one at a time on one
            thread, and the ids that arrive meanwhile form the next read, so a lone request
            never waits for company.
    """

    def __init__(
        self,
        name: str,
        *,
        open_store: Callable[[], OnlineFeatures],
        max_instances: int = DEFAULT_MAX_INSTANCES,
        lookup_batch_size: int = 256,
    ) -> None:
        super().__init__(name)
        self.open_store = open_store
        self.max_instances = max_instances
        self.lookup_batch_size = lookup_batch_size
        self.store: OnlineFeatures | None = None
        self._lookups: MicroBatcher[str, dict[str, Any] | None] | None = None
        self._predictor: PredictorClient | None = None
        self._closing: asyncio.Task[None] | None = None

    def load(self) -> bool:
        """Open the feature store and the batcher of its online reads."""
        self.store = self.open_store()
        # One thread: a store's client (e.g. a SQLite connection) is used by one read at a time.
        self._lookups = MicroBatcher(
            self.store.online,
            max_batch_size=self.lookup_batch_size,
            max_wait_ms=0.0,
            executor=ThreadPoolExecutor(1, thread_name_prefix="feast-online"),
        )
        self.ready = True
        return self.ready

    def stop(self) -> None:
        """Not ready; the predictor connections close with the event loop that still runs."""
        super().stop()
        if self._predictor is not None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing left to close
                self._closing = asyncio.get_running_loop().create_task(self._predictor.close())

    async def preprocess(
        self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """``{"instances": [{"title_id": ...}]}`` -> ``{"instances": [{title_id, plot, reviews}]}``.

        Raises:
            InvalidRequestError: A malformed request (400).
            UnknownTitleError: An id the online store has no features for (404).
        """
        try:
            if isinstance(payload, InferRequest):
                raise InvalidRequestError(
                    'the transformer speaks V1: POST {"instances": [{"title_id": "..."}]} to '
                    f"/v1/models/{self.name}:predict, or send plots to the predictor's V2 endpoint"
                )
            ids = parse_title_ids(payload, max_instances=self.max_instances)
            assert self._lookups is not None  # load() ran
            rows = await self._lookups.submit(ids)
            unknown = [t for t, row in zip(ids, rows, strict=True) if row is None]
            if unknown:
                raise UnknownTitleError(
                    f"unknown title_id {', '.join(map(repr, unknown[:5]))}: the feature store has "
                    "no features for it; ingest and materialize the title first, or send its plot "
                    "to the predictor"
                )
        except InvalidRequestError as exc:
            note_error(exc.kind)
            raise
        return {
            "instances": [
                {"title_id": t, "plot": row["plot"], "reviews": list(row["reviews"] or [])}
                for t, row in zip(ids, rows, strict=True)
                if row is not None
            ]
        }

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Forward the features to the predictor (V1); its 4xx stay 4xx, its failures become 502."""
        if self._predictor is None:
            self._predictor = PredictorClient(self.predictor_config)
        assert isinstance(payload, dict)  # preprocess() built it
        return await self._predictor.predict(
            self.name, payload, append_forwardable_headers(headers)
        )
