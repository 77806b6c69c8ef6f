"""``python -m serving.signals``: Prometheus exporter of the registry's and the data's freshness.

Gauges, computed on each scrape from ``trending.monitoring.signals``: ``trending_model_age_seconds{model,
alias}``, ``trending_data_age_seconds``, ``trending_new_rows_since_training{model}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field

from serving.listening import serve_app
from serving.settings import ServiceSettings, exit_with, load_settings, settings_parser
from trending.data.snapshots import SnapshotStore
from trending.monitoring.signals import data_age, model_ages, new_rows_since_training
from trending.registry import Registry

PROG = "python -m serving.signals"
log = logging.getLogger("serving.signals")


class FreshnessCollector(Collector):
    """Reads the registry and the snapshot store at scrape time."""

    def __init__(self, registry: Registry, snapshots: SnapshotStore) -> None:
        self.registry = registry
        self.snapshots = snapshots

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the freshness gauges; a store that cannot be read yields nothing (logged)."""
        model = self.registry.model_name
        ages = GaugeMetricFamily(
            "trending_model_age_seconds",
            "Seconds since the version an alias points at was registered",
            labels=["model", "alias"],
        )
        data = GaugeMetricFamily(
            "trending_data_age_seconds", "Seconds since the newest dataset snapshot was written"
        )
        new_rows = GaugeMetricFamily(
            "trending_new_rows_since_training",
            "Accepted rows in the newest snapshot beyond those production was trained on",
            labels=["model"],
        )
        try:
            for alias, age in model_ages(self.registry).items():
                ages.add_metric([model, alias], age)
            if (age := data_age(self.snapshots)) is not None:
                data.add_metric([], age)
            if (rows := new_rows_since_training(self.registry, self.snapshots)) is not None:
                new_rows.add_metric([model], rows)
        except Exception:
            log.exception("reading the registry or snapshot store failed")
        yield from (ages, data, new_rows)


def create_app(collector: FreshnessCollector) -> FastAPI:
    """GET /metrics, /healthz, /readyz."""
    metrics_registry = CollectorRegistry()
    metrics_registry.register(collector)
    app = FastAPI(title="Trending Now freshness signals")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    @app.get("/readyz")
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return app


class SignalsSettings(ServiceSettings):
    """Where the exporter listens and which stores it reads.

    It also reads the platform settings (the registry and data store defaults).
    """

    reads_platform_settings = True

    port: int = Field(8080, ge=0, description="HTTP port (/metrics, /healthz, /readyz).")
    registry_uri: str | None = Field(
        None, description="The registry (default: the platform's registry)."
    )
    model_name: str = Field("genre-classifier", description="The registry model.")
    data_uri: str | None = Field(None, description="The snapshot store (default: the platform's).")


def parse(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> SignalsSettings:
    """The settings from ``argv`` and ``environ`` (default: the process's); exit 2 on error."""
    parser = settings_parser(SignalsSettings, prog=PROG, description=__doc__)
    return load_settings(SignalsSettings, parser, argv, environ)[1]


def main(argv: list[str] | None = None) -> None:
    """Serve the exporter until stopped."""
    from trending.data.ingest import data_store_uri
    from trending.registry.objectstore import open_store
    from trending.settings import Settings

    settings = parse(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        platform = Settings()
        registry = Registry.from_uri(
            settings.registry_uri or platform.resolved_registry_uri, settings.model_name
        )
        snapshots = SnapshotStore(open_store(settings.data_uri or data_store_uri(platform)))
    except ValueError as exc:
        exit_with(PROG, str(exc))
    serve_app(
        create_app(FreshnessCollector(registry, snapshots)),
        host=settings.host,
        port=settings.port,
        port_file=settings.port_file,
    )


if __name__ == "__main__":
    main()
