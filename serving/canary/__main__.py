"""``python -m serving.canary``: the canary controller, a long-running reconciler.

When the registry's ``canary`` alias moves to a new version it rolls that version out on the
InferenceService (``--inference_service NAME --namespace NS``) or the local router
(``--split_file F``), steps its traffic by the evidence in Prometheus, then promotes or rolls it
back, moves the aliases and writes every decision to the registry's event log. It idles while
there is no canary and serves ``/healthz``, ``/readyz`` and ``/metrics`` on ``--port``.
See docs/canary.md and docs/adr/0012-canary-reconciler.md.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from serving.canary.actuators import KServeActuator, LocalSplitActuator, TrafficActuator
from serving.canary.app import create_app
from serving.canary.controller import ControllerLoop
from serving.canary.reconciler import CanaryReconciler, ControllerMetrics
from serving.listening import serve_app
from serving.settings import ServiceSettings, exit_with, load_settings, settings_parser
from trending.monitoring.prom import PrometheusClient
from trending.registry import Registry
from trending.rollout.canary import CanaryPolicy, CanaryPolicyError, load_policy

PROG = "python -m serving.canary"
log = logging.getLogger("serving.canary")


class CanaryControllerSettings(ServiceSettings):
    """Where the canary comes from (the registry), where its traffic goes, and the evidence."""

    # The chart hands every workload the platform ConfigMap (TRENDING_PROFILE, ...).
    reads_platform_settings: ClassVar[bool] = True

    model_name: str = Field(
        "genre-classifier", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Registry model."
    )
    registry_uri: str = Field(
        pattern=r"^(file|s3)://", description="Registry root: file:///dir or s3://bucket/prefix."
    )
    prometheus_url: str = Field(
        pattern=r"^https?://", description="Prometheus HTTP API with the serving metrics."
    )
    prometheus_job: str | None = Field(
        None, description="Only series of this Prometheus job (e.g. trending-router locally)."
    )
    inference_service: str | None = Field(
        None, description="The InferenceService whose canary is driven (KServe)."
    )
    namespace: str = Field("default", description="Namespace of the InferenceService.")
    mode: Literal["standard", "rawdeployment", "knative", "serverless"] | None = Field(
        None, description="KServe mode when the object has no deploymentMode annotation."
    )
    split_file: Path | None = Field(None, description="The local router's split file instead.")
    policy: Path | None = Field(None, description="Canary policy YAML (default: built-in).")
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="Port of /healthz, /readyz and /metrics (0: any free port).",
    )
    interval_seconds: float = Field(15.0, gt=0, description="Longest wait between passes.")
    max_backoff_seconds: float = Field(
        300.0, gt=0, description="Longest wait between retries while Kubernetes is unreachable."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    @model_validator(mode="after")
    def _one_target(self) -> CanaryControllerSettings:
        if (self.inference_service is None) == (self.split_file is None):
            raise ValueError(
                "give exactly one of --inference_service (KServe) or --split_file (local router) "
                "(or TRENDING_INFERENCE_SERVICE / TRENDING_SPLIT_FILE)"
            )
        return self


def build_parser() -> argparse.ArgumentParser:
    """One flag per settings field (``--registry_uri``; env ``TRENDING_REGISTRY_URI``)."""
    return settings_parser(CanaryControllerSettings, prog=PROG, description=__doc__)


def parse(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> CanaryControllerSettings:
    """The settings from ``argv`` and ``environ`` (exit 2 with one line on error)."""
    _, settings = load_settings(CanaryControllerSettings, build_parser(), argv, environ)
    return settings


def build_actuator(settings: CanaryControllerSettings) -> TrafficActuator:
    """The local split, or the InferenceService (connects to Kubernetes; may raise)."""
    if settings.split_file is not None:
        return LocalSplitActuator(settings.split_file)
    from serving.canary.kube import KubeInferenceServiceApi

    assert settings.inference_service is not None
    return KServeActuator(
        KubeInferenceServiceApi(), settings.inference_service, settings.namespace, settings.mode
    )


def build_loop(
    settings: CanaryControllerSettings, policy: CanaryPolicy, metrics: ControllerMetrics
) -> ControllerLoop:
    """The reconcile loop; its reconciler is built (and Kubernetes reached) on the first pass."""
    registry = Registry.from_uri(settings.registry_uri, settings.model_name)
    prometheus = PrometheusClient(settings.prometheus_url)
    labels = {"job": settings.prometheus_job} if settings.prometheus_job else None

    def build() -> CanaryReconciler:
        return CanaryReconciler(
            registry=registry,
            actuator=build_actuator(settings),
            prometheus=prometheus,
            policy=policy,
            metrics=metrics,
            extra_labels=labels,
        )

    return ControllerLoop(
        build,
        metrics,
        interval_seconds=settings.interval_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the settings, start the reconcile loop, serve the status until stopped."""
    settings = parse(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        policy = load_policy(settings.policy)
        metrics = ControllerMetrics()
        loop = build_loop(settings, policy, metrics)
    except (CanaryPolicyError, ValueError) as exc:
        exit_with(PROG, str(exc), 2)
    stop = threading.Event()
    worker = threading.Thread(target=loop.run, args=(stop,), name="reconcile", daemon=True)
    worker.start()
    target = settings.inference_service or settings.split_file
    log.info(
        "canary controller for %s (%s) serving status on %s:%d",
        settings.model_name,
        target,
        settings.host,
        settings.port,
    )
    app = create_app(
        loop.status,
        metrics.registry,
        alive=worker.is_alive,
        stale_after_seconds=max(
            120.0, 2 * settings.max_backoff_seconds + settings.interval_seconds
        ),
    )
    try:
        serve_app(app, host=settings.host, port=settings.port, port_file=settings.port_file)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
