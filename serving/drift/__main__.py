"""``python -m serving.drift``: the drift-detector service.

Every setting is a flag and a ``TRENDING_*`` variable (serving/settings.py), so the chart
configures it through either.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pydantic import Field, SecretStr

from serving.drift.app import DriftService, bundle_loader, create_app, registry_loader
from serving.listening import serve_app
from serving.settings import ServiceSettings, exit_with, load_settings, settings_parser
from trending.monitoring.drift import DriftError, DriftMonitor

PROG = "python -m serving.drift"


class DriftSettings(ServiceSettings):
    """Where the detectors come from, the window, the scoring interval."""

    port: int = Field(8080, ge=0, description="HTTP port.")
    bundle: Path | None = Field(
        None, description="A bundle folder whose drift/ detector scores every version (local runs)."
    )
    registry_uri: str | None = Field(
        None, description="Registry to fetch each version's bundle from (file:// or s3://)."
    )
    model_name: str = Field("genre-classifier", description="The registry model.")
    alias: str = Field(
        "production", description="Version assumed for events without ce-modelversion (registry)."
    )
    default_version: str | None = Field(
        None, description="Version assumed for events without ce-modelversion (over --alias)."
    )
    window_size: int = Field(1000, ge=2, description="Requests per scored window.")
    min_window: int = Field(100, ge=2, description="Fewest requests scored.")
    interval: float = Field(10.0, gt=0, description="Seconds between scorings.")
    max_versions: int = Field(4, ge=1, description="Model versions tracked at once.")
    drift_token: SecretStr | None = Field(
        None,
        description="Bearer token events must carry (the predictors' TRENDING_PAYLOAD_LOG_TOKEN; "
        "from a Secret, no flag); unset: events are not authenticated.",
    )
    feedback_token: SecretStr | None = Field(
        None,
        description="Bearer token of POST /feedback, the labelled feedback clients send (from a "
        "Secret, no flag); unset: /feedback answers 404.",
    )
    feedback_window: int = Field(
        500, ge=1, description="Labelled titles per version in the rolling feedback micro-F1."
    )
    cache_dir: Path = Field(
        Path("/tmp/trending-drift"),  # noqa: S108 - the pod's writable scratch volume
        description="Where registry bundles are downloaded.",
    )
    body_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest time a sender may take to send an event body (then 408)."
    )


def parse(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> DriftSettings:
    """The settings from ``argv`` and ``environ`` (default: the process's); exit 2 on error."""
    parser = settings_parser(DriftSettings, prog=PROG, description=__doc__)
    return load_settings(DriftSettings, parser, argv, environ)[1]


def main(argv: list[str] | None = None) -> None:
    """Load the detector source, then serve until stopped."""
    settings = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    default_version = settings.default_version
    try:
        if settings.bundle is not None:
            loader = bundle_loader(settings.bundle)
        elif settings.registry_uri:
            loader = registry_loader(settings.registry_uri, settings.cache_dir)
            if default_version is None:
                from trending.registry import Registry, RegistryError

                try:
                    registry = Registry.from_uri(settings.registry_uri, settings.model_name)
                    default_version = str(registry.resolve(settings.alias))
                    loader(settings.model_name, default_version)  # fail early on a bad bundle
                except RegistryError as exc:
                    logging.warning(
                        "alias %s not resolvable yet (%s); events need ce-modelversion",
                        settings.alias,
                        exc,
                    )
        else:
            exit_with(PROG, "give --bundle DIR or --registry_uri URI (or TRENDING_REGISTRY_URI)", 2)
        monitor = DriftMonitor(
            loader,
            window_size=settings.window_size,
            min_window=settings.min_window,
            max_versions=settings.max_versions,
        )
    except DriftError as exc:
        exit_with(PROG, f"drift service cannot start: {exc}")
    token = settings.drift_token.get_secret_value() if settings.drift_token else None
    if token is None:
        logging.warning("no TRENDING_DRIFT_TOKEN: events from any sender are accepted")
    try:
        service = DriftService(
            monitor,
            model_name=settings.model_name,
            default_version=default_version,
            interval=settings.interval,
            token=token,
            feedback_token=(
                settings.feedback_token.get_secret_value() if settings.feedback_token else None
            ),
            feedback_window=settings.feedback_window,
        )
    except ValueError as exc:
        exit_with(PROG, str(exc))
    app = create_app(service, body_timeout_seconds=settings.body_timeout_seconds)
    serve_app(app, host=settings.host, port=settings.port, port_file=settings.port_file)


if __name__ == "__main__":
    sys.exit(main())
