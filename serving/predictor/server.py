"""What the predictor and the transformer share around KServe's ``ModelServer``: flags, start-up."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import kserve
import kserve.model_server
from kserve.utils.utils import strtobool

from serving.flags import parse_checked
from serving.predictor import http
from trending.modelling.inference import DEFAULT_MAX_INSTANCES, DEFAULT_MAX_PAYLOAD_BYTES
from trending.monitoring.metrics import ServingMetrics
from trending.monitoring.payload_log import PayloadLogger, PayloadLogTarget, check_sink_url

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
        help="Sink for request/response events: an http(s):// URL (e.g. the drift detector; "
        "one POST per event) or an object store, file:///dir or s3://bucket/prefix (batched "
        "JSON-lines objects); unset: off. Env: TRENDING_PAYLOAD_LOG_URL.",
    )
    events.add_argument(
        "--payload_log_queue",
        type=int,
        default=env_default("payload_log_queue", 1000, int),
        help="Events held while the sink is slow; more are dropped and counted.",
    )
    events.add_argument(
        "--payload_log_batch_events",
        type=int,
        default=env_default("payload_log_batch_events", 500, int),
        help="Object store sinks: most events per object.",
    )
    events.add_argument(
        "--payload_log_batch_seconds",
        type=float,
        default=env_default("payload_log_batch_seconds", 10.0, float),
        help="Object store sinks: longest an event waits before its batch is written.",
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
    logs = parser.add_argument_group("per-request log lines (off by default; see docs/serving.md)")
    logs.add_argument(
        "--uvicorn_access_log",
        type=strtobool,
        default=env_default("uvicorn_access_log", False, strtobool),
        help="Write uvicorn's access line for every request. Off: trending_requests_total counts "
        "every request by protocol and status, and the ingress or mesh in front of the pod writes "
        "access logs; at hundreds of requests/s the lines cost a noticeable share of each "
        "request's CPU. Env: TRENDING_UVICORN_ACCESS_LOG.",
    )
    # KServe's own flag (default on there); off here for the same reason as --uvicorn_access_log.
    parser.set_defaults(
        component=component,
        enable_latency_logging=env_default("enable_latency_logging", False, strtobool),
    )


# Smallest accepted value of each numeric flag (--max_instances 0 is a server that refuses every
# request: the demo's broken canary).
_LOWEST_VALUES = {
    "--max_instances": 0,
    "--max_payload_bytes": 1,
    "--payload_log_queue": 1,
    "--payload_log_batch_events": 1,
    "--max_batch_size": 1,
    "--max_batch_wait_ms": 0,
}


def parse_serving_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse the flags and refuse values the adapters cannot honour (usage error, exit 2)."""
    args = parse_checked(
        parser, argv, at_least=_LOWEST_VALUES, above={"--payload_log_batch_seconds": 0}
    )
    if args.payload_log_url:
        try:
            check_sink_url(args.payload_log_url)
        except ValueError as exc:
            parser.error(f"--payload_log_url: {exc}")
    if args.workers != 1:
        # KServe starts extra workers as spawned processes and pickles the model to them; the
        # loaded bundle, its metrics and the payload logger's thread do not travel that way.
        parser.error(
            f"--workers {args.workers}: one worker per pod; scale out with replicas instead "
            "(the chart's inferenceService.predictor minReplicas/maxReplicas, KServe's autoscaler)"
        )
    return args


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
    return PayloadLogger(
        target,
        max_queue=args.payload_log_queue,
        on_drop=on_drop,
        batch_events=args.payload_log_batch_events,
        batch_seconds=args.payload_log_batch_seconds,
    ).start()


def configure_request_logs(*, access_log: bool, latency_logging: bool) -> None:
    """Keep or silence the log lines KServe's server writes for every request.

    ``access_log`` False does what uvicorn's own ``access_log=False`` does (KServe always passes
    True): no handlers on ``uvicorn.access``, so uvicorn skips the line altogether.
    ``latency_logging`` False raises ``kserve.trace`` to WARNING: that logger carries only the
    per-request timing lines (KServe's timing middleware writes two per request, wall and CPU
    time, whatever ``--enable_latency_logging`` says; the model writes a third when it is on).
    """
    if not access_log:
        access = logging.getLogger("uvicorn.access")
        access.handlers = []
        access.propagate = False
    if not latency_logging:
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)


def install_event_loop(choice: str) -> str:
    """Make ``asyncio.run`` use uvloop when KServe's ``--event-loop`` asks for it; the loop used.

    ``auto`` (KServe's default, documented as "use uvloop if available") and ``uvloop`` pick
    uvloop when it is installed. KServe passes the choice to uvicorn only for several workers;
    one worker runs under ``asyncio.run`` with whatever policy is set, which this sets.
    """
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("--event-loop uvloop: uvloop is not installed") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # KServe's start-up calls asyncio.get_event_loop(), which under uvloop's policy (as in
    # Python 3.12+) needs a loop set first.
    asyncio.set_event_loop(asyncio.new_event_loop())
    return "uvloop"


def start_model_server(
    model: Any, args: argparse.Namespace, metrics: ServingMetrics | None, *, grpc: bool = True
) -> None:
    """Install the request guard on KServe's app and serve ``model`` until SIGTERM."""
    http.install(kserve.model_server.app, max_payload_bytes=args.max_payload_bytes, metrics=metrics)
    # KServe's gRPC server reads its message limits from the flags it parsed at import.
    kserve.model_server.args.grpc_max_receive_message_length = min(
        args.grpc_max_receive_message_length, args.max_payload_bytes
    )
    server = kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=grpc and args.enable_grpc,
        enable_latency_logging=args.enable_latency_logging,
    )
    # After ModelServer(), which configures logging when nothing did yet.
    configure_request_logs(
        access_log=args.uvicorn_access_log, latency_logging=args.enable_latency_logging
    )
    if not args.enable_latency_logging:
        http.drop_timing_middleware(kserve.model_server.app)
    install_event_loop(args.event_loop)
    # The loaded model lives as long as the process: moving it (and the imports) out of the
    # collector's generations keeps full collections from walking them (~0.1 s each).
    gc.collect()
    gc.freeze()
    server.start([model])
