"""KServe transformer: ``{title_id}`` requests -> Feast online features -> the predictor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from kserve import InferRequest, Model

from serving.predictor.http import note_error
from trending.modelling.inference import (
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


class FeastTransformer(Model):
    """Look titles up by id in the Feast online store and forward their features (V1).

    Args:
        name: The model name; the predictor serves the same name.
        open_store: Opens the feature store (called once, in ``load``).
        max_instances: Most title ids per request.
    """

    def __init__(
        self,
        name: str,
        *,
        open_store: Callable[[], OnlineFeatures],
        max_instances: int = DEFAULT_MAX_INSTANCES,
    ) -> None:
        super().__init__(name)
        self.open_store = open_store
        self.max_instances = max_instances
        self.store: OnlineFeatures | None = None

    def load(self) -> bool:
        """Open the feature store."""
        self.store = self.open_store()
        self.ready = True
        return self.ready

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
            assert self.store is not None  # load() ran
            rows = await asyncio.to_thread(self.store.online, ids)
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
        """Forward to the predictor; its 4xx stay 4xx, its failures become 502."""
        try:
            return await super().predict(payload, headers, response_headers)
        except httpx.HTTPStatusError as exc:
            response = exc.response
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            if 400 <= response.status_code < 500:
                error = InvalidRequestError(f"the predictor rejected the features: {message}")
                error.status = response.status_code
                note_error("invalid_features")
                raise error from None
            note_error("predictor_failed")
            raise PredictorUnavailableError(
                f"the predictor answered {response.status_code}: {message}"
            ) from None
        except httpx.TransportError as exc:
            note_error("predictor_unreachable")
            raise PredictorUnavailableError(
                f"the predictor at {self.predictor_config.predictor_host} is unreachable ({exc}); "
                "check --predictor_host"
            ) from None
