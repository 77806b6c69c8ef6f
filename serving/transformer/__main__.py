"""``python -m serving.transformer``: ask by title id; Feast features, predictor genres."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import kserve
import kserve.model_server
from fastapi import Request
from fastapi.responses import JSONResponse

from serving.predictor.server import (
    add_serving_flags,
    env_default,
    parse_serving_args,
    start_model_server,
)
from serving.transformer.model import FeastTransformer, PredictorUnavailableError
from trending.features.store import TitleFeatureStore
from trending.monitoring.metrics import ServingMetrics
from trending.settings import Settings

log = logging.getLogger("kserve.trending")


def build_parser() -> argparse.ArgumentParser:
    """KServe's flags (``--predictor_host``, ``--model_name``...) plus the Feast store."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.transformer",
        parents=[kserve.model_server.parser],
        description=__doc__,
    )
    parser.add_argument(
        "--feature_repo",
        type=Path,
        default=None,
        help="The Feast repository folder (default: TRENDING_FEATURE_REPO or feature_repo/).",
    )
    parser.add_argument(
        "--feature_store_dir",
        type=Path,
        default=None,
        help="The Feast state folder (default: <TRENDING_HOME>/feast).",
    )
    parser.add_argument(
        "--metrics_model_label",
        default=env_default("metrics_model_label", None),
        help="model label of this transformer's metrics (default: <model_name>-transformer, "
        "so they never add up with the predictor's).",
    )
    add_serving_flags(parser, component="transformer")
    return parser


async def _predictor_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=502)


def main() -> None:
    """Parse flags, open the feature store, serve."""
    args = parse_serving_args(build_parser())
    if not args.predictor_host:
        raise SystemExit("--predictor_host is required: host:port of the genre predictor")
    if args.configure_logging:
        kserve.logging.configure_logging(args.log_config_file)
    settings = Settings()
    repo = args.feature_repo or settings.feature_repo
    state = args.feature_store_dir or settings.feature_store_dir
    model = FeastTransformer(
        args.model_name,
        open_store=lambda: TitleFeatureStore(repo, state),
        max_instances=args.max_instances,
    )
    model.load()
    label = args.metrics_model_label or f"{args.model_name}-transformer"
    metrics = ServingMetrics(label, "n/a", genres=[])
    kserve.model_server.app.add_exception_handler(PredictorUnavailableError, _predictor_unavailable)
    log.info(
        "ready: transformer for %s, Feast repo %s, state %s, predictor %s (%s)",
        model.name,
        repo,
        state,
        args.predictor_host,
        args.predictor_protocol,
    )
    start_model_server(model, args, metrics, grpc=False)


if __name__ == "__main__":
    main()
