"""KServe model serving a genre bundle over V1 and Open Inference Protocol V2 (REST and gRPC)."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import deserialize_bytes_tensor

from serving.predictor.http import note_error
from trending.features.featurize import model_input_text
from trending.modelling.bundle import MANIFEST_NAME, sha256_file
from trending.modelling.bundle.batching import MicroBatcher
from trending.modelling.bundle.inference import (
    DEFAULT_MAX_INSTANCES,
    InvalidRequestError,
    TitleInput,
    parse_v1_body,
    parse_v2_input,
    prediction_rows,
)
from trending.modelling.evaluation import apply_thresholds
from trending.modelling.families import GenrePredictor
from trending.monitoring.metrics import ServingMetrics
from trending.monitoring.payload_log import PayloadLogger

log = logging.getLogger("kserve.trending")
# Families whose model call is expensive enough that concurrent requests should share it.
BATCHED_FAMILIES = {"bert": 32}


class GenreClassifierModel(Model):
    """Loads one verified bundle in ``load()`` and answers predict calls with genres and scores.

    Args:
        name: The model name on the endpoint paths.
        bundle_dir: A local bundle folder.
        storage_uri: A bundle at ``file://``/``s3://`` (as KServe's ``storageUri``).
        registry_uri: A registry root; the bundle is ``ref`` in it.
        registry_model: The model's name in the registry (default: ``name``).
        ref: Alias or version number in the registry.
        cache_dir: Where downloaded bundles go.
        model_version: The ``version`` metric label; default: the registry version, else a
            short hash of the bundle manifest.
        max_instances: Most titles per request.
        max_batch_size: Dynamic batching across concurrent requests: most titles per model
            call; 1 turns it off and each request calls the model directly; None: by family
            (``BATCHED_FAMILIES``, else off).
        max_batch_wait_ms: How long a batch waits to fill.
    """

    def __init__(
        self,
        name: str,
        *,
        bundle_dir: Path | None = None,
        storage_uri: str | None = None,
        registry_uri: str | None = None,
        registry_model: str | None = None,
        ref: str = "production",
        cache_dir: Path = Path("/tmp/trending-bundles"),  # noqa: S108 - a writable scratch folder
        model_version: str | None = None,
        max_instances: int = DEFAULT_MAX_INSTANCES,
        max_batch_size: int | None = None,
        max_batch_wait_ms: float = 5.0,
    ) -> None:
        super().__init__(name)
        if sum(x is not None for x in (bundle_dir, storage_uri, registry_uri)) != 1:
            raise ValueError(
                "give exactly one of bundle_dir (a folder), storage_uri (file:// or s3://) "
                "or registry_uri (+ ref)"
            )
        self.bundle_dir = bundle_dir
        self.storage_uri = storage_uri
        self.registry_uri = registry_uri
        self.registry_model = registry_model or name  # the endpoint name may differ
        self.ref = ref
        self.cache_dir = cache_dir
        self.version = model_version or ""
        self.max_instances = max_instances
        self.max_batch_size = max_batch_size
        self.max_batch_wait_ms = max_batch_wait_ms
        self.predictor: GenrePredictor | None = None
        self.batcher: MicroBatcher[str, np.ndarray] | None = None
        self.metrics: ServingMetrics | None = None
        self.payload_log: PayloadLogger | None = None
        self.device = "cpu"

    def load(self) -> bool:
        """Fetch the bundle (registry or storage URI) when asked to, then verify and load it."""
        bundle_dir = self.bundle_dir
        if self.registry_uri is not None:
            from trending.registry import Registry

            registry = Registry.from_uri(self.registry_uri, self.registry_model)
            version = registry.resolve(self.ref)
            target = self.cache_dir / self.registry_model / str(version)
            bundle_dir = registry.download(version, target)
            self.version = self.version or str(version)
        elif self.storage_uri is not None:
            from trending.modelling.bundle import local_bundle

            bundle_dir = local_bundle(self.storage_uri, self.cache_dir)
        assert bundle_dir is not None
        self.predictor = GenrePredictor.from_bundle(bundle_dir)
        self.version = self.version or f"bundle-{sha256_file(bundle_dir / MANIFEST_NAME)[:12]}"
        self.device = device_of(self.predictor.model)
        if self.max_batch_size is None:
            self.max_batch_size = BATCHED_FAMILIES.get(self.family, 1)
        if self.max_batch_size > 1:
            self.batcher = MicroBatcher(
                self.predictor.scores,
                max_batch_size=self.max_batch_size,
                max_wait_ms=self.max_batch_wait_ms,
                on_batch=self._record_model_call,
            )
        self.ready = True
        return self.ready

    @property
    def family(self) -> str:
        """The bundle's model family (``xgboost``, ``bert``, ...)."""
        assert self.predictor is not None
        return self.predictor.manifest.model_family

    async def _scores(self, texts: list[str]) -> np.ndarray:
        assert self.predictor is not None  # load() ran: KServe only routes to ready models
        if self.batcher is None:
            self._record_model_call(len(texts))
            return self.predictor.scores(texts)
        return np.stack(await self.batcher.submit(texts))

    def _record_model_call(self, titles: int) -> None:
        if self.metrics is not None:
            self.metrics.record_model_call(titles)

    async def predict_titles(
        self, titles: list[TitleInput]
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Scores and V1 prediction objects for validated titles (metrics recorded)."""
        assert self.predictor is not None
        texts = [model_input_text(t.plot, t.reviews) for t in titles]
        scores = await self._scores(texts)
        chosen = apply_thresholds(scores, self.predictor.manifest.thresholds)
        if self.metrics is not None:
            self.metrics.record_batch(scores, chosen, [len(t) for t in texts])
        return prediction_rows(titles, scores, chosen, self.predictor.genres), scores

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """Answer V1 (``instances`` -> ``predictions``) or V2 (BYTES in, BYTES + FP32 out)."""
        start = time.perf_counter()
        is_grpc = isinstance(payload, InferRequest) and payload.from_grpc
        code = 200
        try:
            if isinstance(payload, InferRequest):
                titles = self._v2_titles(payload)
                event_id = payload.id or _request_id(headers)
            else:
                titles = parse_v1_body(payload, max_instances=self.max_instances)
                event_id = _request_id(headers)
            rows, scores = await self.predict_titles(titles)
            self._log_payload(event_id, titles, rows)
            if isinstance(payload, InferRequest):
                return self._v2_response(payload, event_id, rows, scores)
            return {"predictions": rows}
        except InvalidRequestError as exc:
            code = exc.status
            self._count_error(exc.kind, is_grpc)
            if is_grpc:
                raise InvalidInput(str(exc)) from None
            raise
        except Exception:
            code = 500
            self._count_error("internal", is_grpc)
            raise
        finally:
            if is_grpc and self.metrics is not None:
                self.metrics.record_request("grpc-v2", code, time.perf_counter() - start)

    def _count_error(self, kind: str, is_grpc: bool) -> None:
        if not note_error(kind) and is_grpc and self.metrics is not None:
            self.metrics.record_error(kind)

    def _v2_titles(self, request: InferRequest) -> list[TitleInput]:
        if len(request.inputs) != 1:
            raise InvalidRequestError(
                f"{len(request.inputs)} input tensors: send exactly one BYTES tensor of shape [N] "
                "holding plot texts"
            )
        tensor = request.inputs[0]
        data = tensor.data
        raw = getattr(tensor, "_raw_data", None)  # binary extension / gRPC raw_input_contents
        if raw is not None and tensor.datatype == "BYTES":
            try:
                data = deserialize_bytes_tensor(raw).tolist()
            except Exception:
                raise InvalidRequestError(
                    "the raw BYTES tensor is malformed: each element must be a 4-byte "
                    "little-endian length followed by that many UTF-8 bytes"
                ) from None
        return parse_v2_input(tensor.datatype, tensor.shape, data, max_instances=self.max_instances)

    def _v2_response(
        self,
        request: InferRequest,
        response_id: str,
        rows: list[dict[str, Any]],
        scores: np.ndarray,
    ) -> InferResponse:
        assert self.predictor is not None
        # Every optional OIP field filled: KServe writes an empty one as null, which the
        # protocol's schema does not allow (content_type: MLServer's names for the codecs).
        genres = InferOutput(
            name="genres",
            shape=[len(rows)],
            datatype="BYTES",
            parameters={"content_type": "str"},
        )
        genres.set_data_from_numpy(
            np.array([",".join(r["genres"]) for r in rows], dtype=object), binary_data=False
        )
        score_out = InferOutput(
            name="scores",
            shape=list(scores.shape),
            datatype="FP32",
            parameters={"content_type": "np"},
        )
        score_out.set_data_from_numpy(np.asarray(scores, dtype=np.float32), binary_data=False)
        return InferResponse(
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[genres, score_out],
            response_id=response_id,
            parameters={"genre_order": ",".join(self.predictor.genres)},
            use_binary_outputs=False,
        )

    def get_input_types(self) -> list[dict[str, Any]]:
        """The one input tensor: plot texts, BYTES of shape [-1] (KServe's V2 and gRPC metadata)."""
        return [{"name": "plot", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        """Chosen genres per title (comma-joined, BYTES [-1]) and the FP32 score matrix."""
        assert self.predictor is not None
        return [
            {"name": "genres", "datatype": "BYTES", "shape": [-1]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, len(self.predictor.genres)]},
        ]

    def metadata(self) -> dict[str, Any]:
        """Open Inference Protocol model metadata: version, platform, tensors, genre names.

        The scores tensor's ``parameters.genre_order`` names its columns (comma-joined, as in
        every V2 response's ``parameters``).
        """
        assert self.predictor is not None
        inputs = self.get_input_types()
        inputs[0]["parameters"] = {"content_type": "str"}
        genres, scores = self.get_output_types()
        genres["parameters"] = {"content_type": "str"}
        scores["parameters"] = {
            "content_type": "np",
            "genre_order": ",".join(self.predictor.genres),
        }
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": f"trending-{self.family}",
            "inputs": inputs,
            "outputs": [genres, scores],
        }

    def _log_payload(
        self, event_id: str, titles: list[TitleInput], rows: list[dict[str, Any]]
    ) -> None:
        if self.payload_log is None:
            return
        model_id = f"{self.name}:{self.version}"
        instances = [t.model_dump(exclude_none=True) for t in titles]
        self.payload_log.log_request(event_id, {"instances": instances}, model_id=model_id)
        self.payload_log.log_response(event_id, {"predictions": rows}, model_id=model_id)


def device_of(model: object) -> str:
    """``cuda...`` or ``cpu``: where a model family runs (BERT picks CUDA when present)."""
    return str(getattr(model, "device", None) or "cpu")


def _request_id(headers: dict[str, str] | None) -> str:
    if headers:
        value = headers.get("x-request-id")
        if value:
            return value
    return str(uuid.uuid4())
