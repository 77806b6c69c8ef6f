"""``python -m serving.trigger``: the retrain trigger (Alertmanager webhook receiver).

Every flag has an environment default, so the Helm chart configures it through env and Secrets.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn

from serving.flags import parse_checked
from serving.trigger.app import TriggerService, create_app
from trending.rollout.retrain import (
    KfpApiLauncher,
    LocalCommandLauncher,
    RetrainCoordinator,
    RetrainRequest,
    RunLauncher,
    scheduled_requests,
)


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (defaults from TRENDING_* environment variables)."""
    p = argparse.ArgumentParser(prog="python -m serving.trigger", description=__doc__)
    p.add_argument("--host", default=_env("TRENDING_TRIGGER_HOST", "0.0.0.0"))  # noqa: S104
    p.add_argument("--port", type=int, default=int(_env("TRENDING_TRIGGER_PORT", "8080") or 8080))
    p.add_argument(
        "--token-file",
        type=Path,
        default=_env("TRENDING_TRIGGER_TOKEN_FILE"),
        help="file holding the bearer token (a mounted Secret); else TRENDING_TRIGGER_TOKEN",
    )
    p.add_argument("--registry-uri", default=_env("TRENDING_REGISTRY_URI"))
    p.add_argument("--model-name", default=_env("TRENDING_MODEL_NAME", "genre-classifier"))
    p.add_argument(
        "--cooldown-seconds",
        type=float,
        default=float(_env("TRENDING_TRIGGER_COOLDOWN_SECONDS", "21600") or 21600),
        help="at most one run per model in this time (default 6 h)",
    )
    p.add_argument(
        "--launcher",
        choices=["local", "kfp"],
        default=_env("TRENDING_TRIGGER_LAUNCHER", "local"),
    )
    p.add_argument(
        "--command",
        default=_env("TRENDING_TRIGGER_COMMAND"),
        help="local launcher: command before --reason/--window (shell words); default: "
        "<python> -m cli pipeline run continuous-training",
    )
    p.add_argument("--log-dir", type=Path, default=_env("TRENDING_TRIGGER_LOG_DIR"))
    p.add_argument("--kfp-host", default=_env("TRENDING_KFP_HOST"))
    p.add_argument("--kfp-pipeline-id", default=_env("TRENDING_KFP_PIPELINE_ID"))
    p.add_argument("--kfp-pipeline-version-id", default=_env("TRENDING_KFP_PIPELINE_VERSION_ID"))
    p.add_argument("--kfp-experiment-id", default=_env("TRENDING_KFP_EXPERIMENT_ID"))
    p.add_argument(
        "--max-model-age-hours",
        type=float,
        default=float(_env("TRENDING_TRIGGER_MAX_MODEL_AGE_HOURS", "0") or 0),
        help="schedule: retrain when production is older (0 = off)",
    )
    p.add_argument(
        "--min-new-rows",
        type=int,
        default=int(_env("TRENDING_TRIGGER_MIN_NEW_ROWS", "0") or 0),
        help="data volume: retrain when this many new accepted rows arrived (0 = off)",
    )
    p.add_argument("--data-uri", default=_env("TRENDING_DATA_URI"), help="the snapshot store")
    p.add_argument(
        "--check-interval",
        type=float,
        default=float(_env("TRENDING_TRIGGER_CHECK_INTERVAL", "300") or 300),
    )
    return parse_checked(
        p,
        argv,
        at_least={
            "--port": 0,
            "--cooldown-seconds": 0,
            "--max-model-age-hours": 0,
            "--min-new-rows": 0,
        },
        above={"--check-interval": 0},
    )


def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        try:
            return args.token_file.read_text().strip()
        except OSError as exc:
            sys.exit(f"cannot read the trigger token file {args.token_file}: {exc}")
    token = os.environ.get("TRENDING_TRIGGER_TOKEN", "").strip()
    if not token:
        sys.exit(
            "no bearer token: set TRENDING_TRIGGER_TOKEN or --token-file (the same secret "
            "Alertmanager sends via http_config.authorization.credentials_file)"
        )
    return token


def _launcher(args: argparse.Namespace) -> RunLauncher:
    if args.launcher == "kfp":
        missing = [
            flag
            for flag, value in [
                ("--kfp-host", args.kfp_host),
                ("--kfp-pipeline-id", args.kfp_pipeline_id),
                ("--kfp-pipeline-version-id", args.kfp_pipeline_version_id),
            ]
            if not value
        ]
        if missing:
            sys.exit(f"launcher 'kfp' needs {', '.join(missing)} (or their TRENDING_* env)")
        return KfpApiLauncher(
            args.kfp_host,
            args.kfp_pipeline_id,
            args.kfp_pipeline_version_id,
            experiment_id=args.kfp_experiment_id,
            token=os.environ.get("TRENDING_KFP_TOKEN"),
        )
    command = shlex.split(args.command) if args.command else None
    return LocalCommandLauncher(command, log_dir=args.log_dir)


def main(argv: list[str] | None = None) -> None:
    """Build the coordinator and serve until stopped."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from trending.settings import Settings

    settings = Settings()
    registry_uri = args.registry_uri or settings.resolved_registry_uri
    coordinator = RetrainCoordinator(
        registry_uri, _launcher(args), cooldown=timedelta(seconds=args.cooldown_seconds)
    )
    periodic = None
    if args.max_model_age_hours > 0 or args.min_new_rows > 0:
        from trending.data.ingest import data_store_uri
        from trending.data.snapshots import SnapshotStore
        from trending.registry.objectstore import open_store

        snapshots = SnapshotStore(open_store(args.data_uri or data_store_uri(settings)))
        max_age = timedelta(hours=args.max_model_age_hours) if args.max_model_age_hours else None

        def periodic() -> list[RetrainRequest]:
            return scheduled_requests(
                coordinator.registry(args.model_name),
                max_model_age=max_age,
                snapshots=snapshots,
                min_new_rows=args.min_new_rows or None,
            )

    try:
        service = TriggerService(
            coordinator, _token(args), periodic=periodic, check_interval=args.check_interval
        )
    except ValueError as exc:
        sys.exit(str(exc))
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
