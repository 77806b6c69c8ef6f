"""``python -m serving.transformer``: ask by title id; Feast features, predictor genres."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import kserve
import kserve.model_server
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field

from serving.predictor.server import (
    ServingSettings,
    load_serving_settings,
    serving_parser,
    start_model_server,
)
from serving.settings import exit_with
from serving.transformer.model import (
    FeastTransformer,
    PredictorUnavailableError,
    open_online_features,
)
from trending.monitoring.metrics import ServingMetrics
from trending.settings import Settings

PROG = "python -m serving.transformer"
log = logging.getLogger("kserve.trending")


class TransformerSettings(ServingSettings):
    """Where the online features come from, plus the shared serving fields.

    On a cluster ``feature_server_url`` names the chart's Feast feature server; without it the
    transformer opens the local Feast store (``TRENDING_HOME``, ``TRENDING_FEATURE_REPO``).
    """

    reads_platform_settings = True

    feature_repo: Path | None = Field(
        None, description="The Feast repository folder (default: the platform's feature_repo/)."
    )
    feature_store_dir: Path | None = Field(
        None, description="The Feast state folder (default: <TRENDING_HOME>/feast)."
    )
    feature_server_url: str | None = Field(
        None, description="The Feast feature server the online features come from (cluster)."
    )
    metrics_model_label: str | None = Field(
        None,
        description="model label of this transformer's metrics (default: <model_name>-transformer, "
        "so they never add up with the predictor's).",
    )


def build_parser() -> argparse.ArgumentParser:
    """KServe's flags (``--predictor_host``, ``--model_name``...) plus the transformer's settings."""
    return serving_parser(
        TransformerSettings, prog=PROG, description=__doc__, component="transformer"
    )


def parse(
    argv: list[str] | None = None, environ: dict[str, str] | None = None
) -> tuple[argparse.Namespace, TransformerSettings]:
    """KServe's flags and the transformer's settings (exit 2 on a usage error)."""
    parser = build_parser()
    args, settings = load_serving_settings(TransformerSettings, parser, argv, environ)
    if not args.predictor_host:
        parser.error("--predictor_host is required: host:port of the genre predictor")
    if args.predictor_protocol != "v1":
        parser.error(
            f"--predictor_protocol {args.predictor_protocol}: the transformer forwards V1 "
            "instances; use v1 (the predictor serves V1 next to V2)"
        )
    return args, settings


async def _predictor_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=502)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, open the feature store, serve."""
    args, settings = parse(argv)
    if args.configure_logging:
        kserve.logging.configure_logging(args.log_config_file)
    try:
        platform = Settings()
    except ValueError as exc:
        exit_with(PROG, f"platform settings: {exc}")
    repo = settings.feature_repo or platform.feature_repo
    state = settings.feature_store_dir or platform.feature_store_dir
    model = FeastTransformer(
        args.model_name,
        open_store=lambda: open_online_features(settings.feature_server_url, repo, state),
        max_instances=settings.max_instances,
    )
    try:
        model.load()
    except (OSError, ValueError) as exc:
        source = settings.feature_server_url or repo
        exit_with(PROG, f"cannot open the feature store {source}: {exc}")
    label = settings.metrics_model_label or f"{args.model_name}-transformer"
    metrics = ServingMetrics(label, "n/a", genres=[])
    kserve.model_server.app.add_exception_handler(PredictorUnavailableError, _predictor_unavailable)
    log.info(
        "ready: transformer for %s, online features from %s, predictor %s (%s)",
        model.name,
        settings.feature_server_url or f"the Feast store {repo} (state {state})",
        args.predictor_host,
        args.predictor_protocol,
    )
    start_model_server(model, args, settings, metrics, grpc=False)


if __name__ == "__main__":
    main()
