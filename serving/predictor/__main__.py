"""``python -m serving.predictor``: serve a genre bundle with the KServe ModelServer.

KServe's ``--model_name`` is the endpoint name (``/v2/models/<model_name>``); the registry model
the bundle comes from is ``--registry_model`` (default: the same name). On a cluster the chart pins
a registry version (``--ref 7``), never an alias (docs/adr/0009-canary.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import kserve
from pydantic import Field, model_validator

from serving.predictor.model import BATCHED_FAMILIES, GenreClassifierModel
from serving.predictor.server import (
    ServingSettings,
    load_serving_settings,
    payload_logger,
    serving_parser,
    start_model_server,
)
from serving.settings import exit_with
from trending.modelling.bundle import BundleError
from trending.monitoring.metrics import ServingMetrics
from trending.registry import RegistryError

PROG = "python -m serving.predictor"
log = logging.getLogger("kserve.trending")


class PredictorSettings(ServingSettings):
    """Where the bundle comes from (exactly one source), batching, plus the shared serving fields."""

    bundle_dir: Path | None = Field(None, description="A bundle folder (e.g. /mnt/models).")
    storage_uri: str | None = Field(
        None, description="A bundle at file:///path or s3://bucket/prefix (S3 env credentials)."
    )
    registry_uri: str | None = Field(
        None, description="Registry root: file:///dir or s3://bucket/prefix."
    )
    registry_model: str | None = Field(
        None, description="Registry model to serve from (default: --model_name, the endpoint name)."
    )
    ref: str = Field(
        "production",
        description="Registry version (a number; what the chart pins) or alias to serve.",
    )
    cache_dir: Path = Field(
        Path("/tmp/trending-bundles"),  # noqa: S108 - the pod's writable scratch volume
        description="Where registry and storage bundles are downloaded.",
    )
    model_version: str | None = Field(
        None, description="version label of the metrics (default: registry version or bundle hash)."
    )
    max_batch_size: int | None = Field(
        None,
        ge=1,
        description="Most titles per model call across concurrent requests; 1 = off. "
        f"Default: {BATCHED_FAMILIES} by family, else 1.",
    )
    max_batch_wait_ms: float = Field(5.0, ge=0, description="Longest wait for a batch to fill.")

    @model_validator(mode="after")
    def _one_source(self) -> PredictorSettings:
        given = [self.bundle_dir, self.storage_uri, self.registry_uri]
        if sum(value is not None for value in given) != 1:
            raise ValueError(
                "give exactly one of --bundle_dir, --storage_uri or --registry_uri "
                "(or TRENDING_BUNDLE_DIR / TRENDING_STORAGE_URI / TRENDING_REGISTRY_URI)"
            )
        return self


def build_parser() -> argparse.ArgumentParser:
    """KServe's server flags plus the predictor's settings, one flag per field."""
    return serving_parser(PredictorSettings, prog=PROG, description=__doc__, component="predictor")


def parse(
    argv: list[str] | None = None, environ: dict[str, str] | None = None
) -> tuple[argparse.Namespace, PredictorSettings]:
    """KServe's flags and the predictor's settings from ``argv`` and ``environ`` (exit 2 on error)."""
    return load_serving_settings(PredictorSettings, build_parser(), argv, environ)


def build_model(args: argparse.Namespace, settings: PredictorSettings) -> GenreClassifierModel:
    """The model the settings describe, loaded, with metrics and payload logging attached."""
    model = GenreClassifierModel(
        args.model_name,
        bundle_dir=settings.bundle_dir,
        storage_uri=settings.storage_uri,
        registry_uri=settings.registry_uri,
        registry_model=settings.registry_model,
        ref=settings.ref,
        cache_dir=settings.cache_dir,
        model_version=settings.model_version,
        max_instances=settings.max_instances,
        max_batch_size=settings.max_batch_size,
        max_batch_wait_ms=settings.max_batch_wait_ms,
    )
    model.load()
    assert model.predictor is not None
    model.metrics = ServingMetrics(model.name, model.version, model.predictor.genres)
    model.payload_log = payload_logger(args, settings, model.metrics)
    return model


def main(argv: list[str] | None = None) -> None:
    """Parse flags, load the model once, serve."""
    args, settings = parse(argv)
    if args.configure_logging:
        kserve.logging.configure_logging(args.log_config_file)
    try:
        model = build_model(args, settings)
    except (RegistryError, BundleError, ValueError, OSError) as exc:
        exit_with(PROG, f"cannot load the model: {exc}")
    log.info(
        "ready: serving %s version %s (%s) on %s, batching %s",
        model.name,
        model.version,
        model.family,
        "CUDA" if model.device.startswith("cuda") else "CPU",
        f"up to {model.max_batch_size} titles / {model.max_batch_wait_ms} ms"
        if model.batcher
        else "off",
    )
    start_model_server(model, args, settings, model.metrics)


if __name__ == "__main__":
    main()
