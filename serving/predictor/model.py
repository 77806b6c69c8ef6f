"""KServe model serving a genre bundle over V1 and Open Inference Protocol V2 (REST and gRPC)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput

from trending.inference import (
    DEFAULT_MAX_INSTANCES,
    InvalidRequestError,
    TitleInput,
    parse_v1_body,
    texts_from_bytes,
)
from trending.models import GenrePredictor


class GenreClassifierModel(Model):
    """Loads one verified bundle in ``load()`` and answers predict calls with genres and scores."""

    def __init__(
        self,
        name: str,
        *,
        bundle_dir: Path | None = None,
        registry_uri: str | None = None,
        ref: str = "production",
        cache_dir: Path = Path("/tmp/trending-bundles"),  # noqa: S108 - a writable scratch folder
        max_instances: int = DEFAULT_MAX_INSTANCES,
    ) -> None:
        super().__init__(name)
        if (bundle_dir is None) == (registry_uri is None):
            raise ValueError("give exactly one of bundle_dir (a bundle folder) or registry_uri (+ ref)")
        self.bundle_dir = bundle_dir
        self.registry_uri = registry_uri
        self.ref = ref
        self.cache_dir = cache_dir
        self.max_instances = max_instances
        self.predictor: GenrePredictor | None = None
        self.version: str = "local"

    def load(self) -> bool:
        """Fetch the bundle from the registry when asked to, then verify and load it."""
        bundle_dir = self.bundle_dir
        if self.registry_uri is not None:
            from trending.registry import Registry

            registry = Registry.from_uri(self.registry_uri, self.name)
            version = registry.resolve(self.ref)
            bundle_dir = registry.download(version, self.cache_dir / self.name / str(version))
            self.version = str(version)
        assert bundle_dir is not None
        self.predictor = GenrePredictor.from_bundle(bundle_dir)
        self.ready = True
        return self.ready

    def _predict_titles(self, titles: list[TitleInput]) -> list[dict[str, Any]]:
        assert self.predictor is not None  # load() ran: KServe only routes to ready models
        predictions = self.predictor.predict_titles([(t.plot, t.reviews) for t in titles])
        return [
            {**({"title_id": t.title_id} if t.title_id else {}), **p.as_dict()}
            for t, p in zip(titles, predictions, strict=True)
        ]

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """V1: ``{"instances": [...]}`` -> ``{"predictions": [...]}``; V2: BYTES in, BYTES + FP32 out."""
        try:
            if isinstance(payload, InferRequest):
                return self._predict_v2(payload)
            return {"predictions": self._predict_titles(parse_v1_body(payload, max_instances=self.max_instances))}
        except InvalidRequestError as exc:
            raise InvalidInput(str(exc)) from None

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        if len(request.inputs) != 1 or request.inputs[0].datatype != "BYTES":
            raise InvalidRequestError("send exactly one BYTES input tensor of shape [N] holding plot texts")
        titles = texts_from_bytes(list(request.inputs[0].data), max_instances=self.max_instances)
        rows = self._predict_titles(titles)
        assert self.predictor is not None
        scores = np.array([[r["scores"][g] for g in self.predictor.genres] for r in rows], dtype=np.float32)
        genres = InferOutput(name="genres", shape=[len(rows)], datatype="BYTES")
        genres.set_data_from_numpy(np.array([",".join(r["genres"]) for r in rows], dtype=object), binary_data=False)
        score_out = InferOutput(name="scores", shape=list(scores.shape), datatype="FP32")
        score_out.set_data_from_numpy(scores, binary_data=False)
        return InferResponse(
            model_name=self.name,
            infer_outputs=[genres, score_out],
            response_id=request.id or str(uuid.uuid4()),
            parameters={"genre_order": ",".join(self.predictor.genres)},
        )
