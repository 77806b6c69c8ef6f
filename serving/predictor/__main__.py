"""``python -m serving.predictor``: serve a genre bundle with the KServe ModelServer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import kserve

from serving.predictor.model import BATCHED_FAMILIES, GenreClassifierModel
from serving.predictor.server import (
    add_serving_flags,
    env_default,
    parse_serving_args,
    payload_logger,
    start_model_server,
)
from trending.monitoring.metrics import ServingMetrics

log = logging.getLogger("kserve.trending")


def build_parser() -> argparse.ArgumentParser:
    """KServe's server flags plus where the bundle comes from, limits, batching, logging."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.predictor",
        parents=[kserve.model_server.parser],
        description=__doc__,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle_dir", type=Path, help="A bundle folder (e.g. /mnt/models).")
    source.add_argument(
        "--storage_uri", help="A bundle at file:///path or s3://bucket/prefix (S3 env credentials)."
    )
    source.add_argument("--registry_uri", help="Registry root: file:///dir or s3://bucket/prefix.")
    parser.add_argument(
        "--ref", default="production", help="Alias or version to serve from the registry."
    )
    parser.add_argument("--cache_dir", type=Path, default=Path("/tmp/trending-bundles"))  # noqa: S108
    parser.add_argument(
        "--model_version",
        default=env_default("model_version", None),
        help="version label of the metrics (default: registry version or bundle hash).",
    )
    batching = parser.add_argument_group("dynamic batching")
    batching.add_argument(
        "--max_batch_size",
        type=int,
        default=env_default("max_batch_size", None, int),
        help="Most titles per model call across concurrent requests; 1 = off. "
        f"Default: {BATCHED_FAMILIES} by family, else 1. Env: TRENDING_MAX_BATCH_SIZE.",
    )
    batching.add_argument(
        "--max_batch_wait_ms",
        type=float,
        default=env_default("max_batch_wait_ms", 5.0, float),
        help="Longest wait for a batch to fill. Env: TRENDING_MAX_BATCH_WAIT_MS.",
    )
    add_serving_flags(parser, component="predictor")
    return parser


def build_model(args: argparse.Namespace) -> GenreClassifierModel:
    """The model the flags describe, loaded, with metrics and payload logging attached."""
    model = GenreClassifierModel(
        args.model_name,
        bundle_dir=args.bundle_dir,
        storage_uri=args.storage_uri,
        registry_uri=args.registry_uri,
        ref=args.ref,
        cache_dir=args.cache_dir,
        model_version=args.model_version,
        max_instances=args.max_instances,
        max_batch_size=args.max_batch_size,
        max_batch_wait_ms=args.max_batch_wait_ms,
    )
    model.load()
    assert model.predictor is not None
    model.metrics = ServingMetrics(model.name, model.version, model.predictor.genres)
    model.payload_log = payload_logger(args, model.metrics)
    return model


def main() -> None:
    """Parse flags, load the model once, serve."""
    args = parse_serving_args(build_parser())
    if args.configure_logging:
        kserve.logging.configure_logging(args.log_config_file)
    model = build_model(args)
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
    start_model_server(model, args, model.metrics)


if __name__ == "__main__":
    main()
