"""``python -m serving.trigger``: the retrain trigger (Alertmanager webhook receiver).

Every setting is a flag and a ``TRENDING_*`` variable (serving/settings.py); the token comes
from a Secret (``TRENDING_TRIGGER_TOKEN``) or a mounted file (``--token_file``).
"""

from __future__ import annotations

import logging
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from serving.listening import serve_app
from serving.settings import ServiceSettings, exit_with, load_settings, settings_parser
from serving.trigger.app import TriggerService, create_app
from serving.trigger.launchers import KfpPipelineLauncher
from trending.rollout.retrain import (
    LocalCommandLauncher,
    RetrainCoordinator,
    RetrainRequest,
    RunLauncher,
    scheduled_requests,
)

PROG = "python -m serving.trigger"


class TriggerSettings(ServiceSettings):
    """Token, launcher, cooldown and the periodic checks of the trigger.

    It also reads the platform settings (the registry default, the data store of the periodic
    checks); the runs it starts locally inherit its environment.
    """

    reads_platform_settings = True

    port: int = Field(8080, ge=0, description="HTTP port.")
    token_file: Path | None = Field(
        None,
        description="File holding the bearer token (a mounted Secret); else TRENDING_TRIGGER_TOKEN.",
    )
    trigger_token: SecretStr | None = Field(
        None, description="The bearer token Alertmanager sends (from a Secret; no flag)."
    )
    registry_uri: str | None = Field(
        None, description="The registry (default: the platform's registry)."
    )
    model_name: str = Field("genre-classifier", description="The registry model.")
    cooldown_seconds: float = Field(
        21600, ge=0, description="At most one run per model in this time (default 6 h)."
    )
    launcher: Literal["local", "kfp"] = Field("local", description="Where runs start.")
    command: str | None = Field(
        None,
        description="local launcher: command before --reason/--window (shell words); default: "
        "<python> -m cli pipeline run continuous-training.",
    )
    log_dir: Path | None = Field(None, description="local launcher: where run logs go.")
    kfp_host: str | None = Field(
        None, description="kfp launcher: the KFP API endpoint (default: the platform's)."
    )
    kfp_pipeline: str = Field(
        "continuous-training",
        description="kfp launcher: the uploaded pipeline to run (`trending pipeline upload`).",
    )
    kfp_pipeline_version: str | None = Field(
        None,
        description="kfp launcher: the upload's version label (the chart's appVersion); "
        "unset: the newest uploaded version.",
    )
    kfp_experiment: str = Field("trending", description="kfp launcher: the KFP experiment.")
    max_model_age_hours: float = Field(
        0, ge=0, description="Schedule: retrain when production is older (0 = off)."
    )
    min_new_rows: int = Field(
        0,
        ge=0,
        description="Data volume: retrain when this many new accepted rows arrived (0 = off).",
    )
    data_uri: str | None = Field(None, description="The snapshot store (default: the platform's).")
    check_interval: float = Field(300, gt=0, description="Seconds between periodic checks.")


def parse(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> TriggerSettings:
    """The settings from ``argv`` and ``environ`` (default: the process's); exit 2 on error."""
    parser = settings_parser(TriggerSettings, prog=PROG, description=__doc__)
    return load_settings(TriggerSettings, parser, argv, environ)[1]


def _token(settings: TriggerSettings) -> str:
    if settings.token_file is not None:
        try:
            return settings.token_file.read_text().strip()
        except OSError as exc:
            exit_with(PROG, f"cannot read the trigger token file {settings.token_file}: {exc}")
    token = settings.trigger_token.get_secret_value().strip() if settings.trigger_token else ""
    if not token:
        exit_with(
            PROG,
            "no bearer token: set TRENDING_TRIGGER_TOKEN or --token_file (the same secret "
            "Alertmanager sends via http_config.authorization.credentials_file)",
        )
    return token


def _launcher(settings: TriggerSettings, kfp_host: str | None) -> RunLauncher:
    if settings.launcher == "kfp":
        if not kfp_host:
            exit_with(PROG, "launcher 'kfp' needs the KFP API: set TRENDING_KFP_HOST or --kfp_host")
        # serving never imports kfp: the CLI makes the kfp.Client call (serving/trigger/launchers.py).
        return KfpPipelineLauncher(
            settings.kfp_pipeline,
            settings.kfp_pipeline_version,
            experiment=settings.kfp_experiment,
            host=kfp_host,
        )
    command = shlex.split(settings.command) if settings.command else None
    return LocalCommandLauncher(command, log_dir=settings.log_dir)


def main(argv: list[str] | None = None) -> None:
    """Build the coordinator and serve until stopped."""
    settings = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from trending.settings import Settings

    try:
        platform = Settings()
    except ValueError as exc:
        exit_with(PROG, f"platform settings: {exc}")
    registry_uri = settings.registry_uri or platform.resolved_registry_uri
    launcher = _launcher(settings, settings.kfp_host or platform.kfp_host)
    coordinator = RetrainCoordinator(
        registry_uri,
        launcher,
        models=(settings.model_name,),
        cooldown=timedelta(seconds=settings.cooldown_seconds),
    )
    periodic = None
    if settings.max_model_age_hours > 0 or settings.min_new_rows > 0:
        from trending.data.ingest import data_store_uri
        from trending.data.snapshots import SnapshotStore
        from trending.registry.objectstore import open_store

        snapshots = SnapshotStore(open_store(settings.data_uri or data_store_uri(platform)))
        max_age = (
            timedelta(hours=settings.max_model_age_hours) if settings.max_model_age_hours else None
        )

        def periodic() -> list[RetrainRequest]:
            return scheduled_requests(
                coordinator.registry(settings.model_name),
                max_model_age=max_age,
                snapshots=snapshots,
                min_new_rows=settings.min_new_rows or None,
            )

    try:
        service = TriggerService(
            coordinator, _token(settings), periodic=periodic, check_interval=settings.check_interval
        )
    except ValueError as exc:
        exit_with(PROG, str(exc))
    serve_app(
        create_app(service), host=settings.host, port=settings.port, port_file=settings.port_file
    )


if __name__ == "__main__":
    main()
