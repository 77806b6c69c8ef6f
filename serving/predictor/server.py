"""What the predictor and the transformer share around KServe's ``ModelServer``: flags, start-up."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, TypeVar

import kserve
import kserve.model_server

from serving.predictor import http
from trending.inference import DEFAULT_MAX_INSTANCES, DEFAULT_MAX_PAYLOAD_BYTES
from trending.metrics import ServingMetrics
from trending.payload_log import PayloadLogger, PayloadLogTarget

T = TypeVar("T")


def env_default(name: str, default: T, convert: Callable[[str], T] = str) -> T:  # type: ignore[assignment]
    """``TRENDING_<NAME>`` from the environment, converted, else ``default``."""
    value = os.environ.get(f"TRENDING_{name.upper()}")
    return default if value in (None, "") else convert(value)


def add_serving_flags(parser: argparse.ArgumentParser, component: str) -> None:
    """Request limits and payload logging (each defaults to a ``TRENDING_*`` variable)."""
    limits = parser.add_argument_group("request limits")
    limits.add_argument(
        "--max_instances",
        type=int,
        default=env_default("max_instances", DEFAULT_MAX_INSTANCES, int),
        help="Most titles in one request (more is a 400). Env: TRENDING_MAX_INSTANCES.",
    )
    limits.add_argument(
        "--max_payload_bytes",
        type=int,
        default=env_default("max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES, int),
        help="Largest request body in bytes (more is a 413). Env: TRENDING_MAX_PAYLOAD_BYTES.",
    )
    events = parser.add_argument_group("payload logging (CloudEvents, KServe logger format)")
    events.add_argument(
        "--payload_log_url",
        default=env_default("payload_log_url", None),
        help="Sink for request/response events, e.g. the drift detector's URL; unset: off. "
        "Env: TRENDING_PAYLOAD_LOG_URL.",
    )
    events.add_argument(
        "--payload_log_queue",
        type=int,
        default=env_default("payload_log_queue", 1000, int),
        help="Events held while the sink is slow; more are dropped and counted.",
    )
    events.add_argument(
        "--inference_service_name",
        default=env_default("inference_service_name", None),
        help="ce-inferenceservicename of the events (default: the model name).",
    )
    events.add_argument(
        "--endpoint",
        default=env_default("endpoint", ""),
        help="ce-endpoint of the events, e.g. stable or canary. Env: TRENDING_ENDPOINT.",
    )
    parser.set_defaults(component=component)


def payload_logger(
    args: argparse.Namespace, metrics: ServingMetrics | None
) -> PayloadLogger | None:
    """The payload logger the flags ask for (started), or None when logging is off."""
    if not args.payload_log_url:
        return None
    source = f"http://{os.environ.get('HOSTNAME', 'localhost')}:{args.http_port}"
    target = PayloadLogTarget(
        sink_url=args.payload_log_url,
        source=source,
        inference_service_name=args.inference_service_name or args.model_name,
        namespace=os.environ.get("POD_NAMESPACE", ""),
        component=args.component,
        endpoint=args.endpoint,
    )
    on_drop = metrics.record_payload_log_dropped if metrics is not None else None
    return PayloadLogger(target, max_queue=args.payload_log_queue, on_drop=on_drop).start()


def start_model_server(
    model: Any, args: argparse.Namespace, metrics: ServingMetrics | None, *, grpc: bool = True
) -> None:
    """Install the request guard on KServe's app and serve ``model`` until SIGTERM."""
    http.install(kserve.model_server.app, max_payload_bytes=args.max_payload_bytes, metrics=metrics)
    # KServe's gRPC server reads its message limits from the flags it parsed at import.
    kserve.model_server.args.grpc_max_receive_message_length = min(
        args.grpc_max_receive_message_length, args.max_payload_bytes
    )
    kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=grpc and args.enable_grpc,
    ).start([model])
