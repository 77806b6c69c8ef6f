"""What the predictor and the transformer share around KServe's ``ModelServer``: settings, start-up."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import kserve
import kserve.model_server
from kserve.protocol.rest.server import RESTServer
from pydantic import Field, SecretStr, field_validator

from serving.listening import announce_ports, bound_port, listen
from serving.predictor import http
from serving.predictor.grpc_server import GuardedGRPCServer
from serving.settings import ServiceSettings, load_settings, settings_parser
from trending.modelling.bundle.inference import DEFAULT_MAX_INSTANCES, DEFAULT_MAX_PAYLOAD_BYTES
from trending.monitoring.metrics import ServingMetrics
from trending.monitoring.payload_log import PayloadLogger, PayloadLogTarget, check_sink_url

SS = TypeVar("SS", bound="ServingSettings")


class ServingSettings(ServiceSettings):
    """What the predictor and the transformer share: request limits and payload logging.

    KServe's own flags (``--model_name``, ``--http_port``, ``--workers``...) stay KServe's; these are
    the project's, each a flag and a ``TRENDING_*`` variable.
    """

    max_instances: int = Field(
        DEFAULT_MAX_INSTANCES, ge=0, description="Most titles in one request (more is a 400)."
    )
    max_payload_bytes: int = Field(
        DEFAULT_MAX_PAYLOAD_BYTES,
        ge=1,
        description="Largest request body in bytes (more is a 413).",
    )
    body_timeout_seconds: float = Field(
        http.DEFAULT_BODY_TIMEOUT_SECONDS,
        gt=0,
        description="Longest time a client may take to send a request body (then 408 and the "
        "connection closes).",
    )
    payload_log_url: str | None = Field(
        None,
        description="Sink for request/response events: an http(s):// URL (e.g. the drift detector; "
        "one POST per event) or an object store, file:///dir or s3://bucket/prefix (batched "
        "JSON-lines objects); unset: off.",
    )
    payload_log_token: SecretStr | None = Field(
        None,
        description="Bearer token the drift detector requires of events (from a Secret, as "
        "TRENDING_PAYLOAD_LOG_TOKEN); unset: events carry no Authorization header.",
    )
    payload_log_queue: int = Field(
        1000, ge=1, description="Events held while the sink is slow; more are dropped and counted."
    )
    payload_log_batch_events: int = Field(
        500, ge=1, description="Object store sinks: most events per object."
    )
    payload_log_batch_seconds: float = Field(
        10.0,
        gt=0,
        description="Object store sinks: longest an event waits before its batch is written.",
    )
    inference_service_name: str | None = Field(
        None, description="ce-inferenceservicename of the events (default: the model name)."
    )
    endpoint: str = Field("", description="ce-endpoint of the events, e.g. stable or canary.")
    uvicorn_access_log: bool = Field(
        False,
        description="Write uvicorn's access line for every request. Off: trending_requests_total "
        "counts every request by protocol and status, and the ingress or mesh in front of the pod "
        "writes access logs; at hundreds of requests/s the lines cost a noticeable share of each "
        "request's CPU.",
    )

    @field_validator("payload_log_url")
    @classmethod
    def _check_sink(cls, value: str | None) -> str | None:
        if value:
            check_sink_url(value)
        return value


def serving_parser(
    settings_cls: type[ServingSettings], *, prog: str, description: str | None, component: str
) -> argparse.ArgumentParser:
    """KServe's server flags plus one flag per field of ``settings_cls``."""
    parser = settings_parser(
        settings_cls, prog=prog, description=description, parents=[kserve.model_server.parser]
    )
    # KServe's own flag (default on there); off here for the same reason as --uvicorn_access_log.
    parser.set_defaults(component=component, enable_latency_logging=False)
    return parser


def load_serving_settings(
    settings_cls: type[SS],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[argparse.Namespace, SS]:
    """Parse KServe's flags and the settings; refuse what the adapters cannot honour (exit 2)."""
    args, settings = load_settings(settings_cls, parser, argv, environ)
    if args.workers != 1:
        # KServe starts extra workers as spawned processes and pickles the model to them; the
        # loaded bundle, its metrics and the payload logger's thread do not travel that way.
        parser.error(
            f"--workers {args.workers}: one worker per pod; scale out with replicas instead "
            "(the chart's inferenceService.predictor minReplicas/maxReplicas, KServe's autoscaler)"
        )
    return args, settings


def payload_logger(
    args: argparse.Namespace, settings: ServingSettings, metrics: ServingMetrics | None
) -> PayloadLogger | None:
    """The payload logger the settings ask for (started), or None when logging is off."""
    if not settings.payload_log_url:
        return None
    source = f"http://{os.environ.get('HOSTNAME', 'localhost')}:{args.http_port}"
    target = PayloadLogTarget(
        sink_url=settings.payload_log_url,
        source=source,
        inference_service_name=settings.inference_service_name or args.model_name,
        namespace=os.environ.get("POD_NAMESPACE", ""),
        component=args.component,
        endpoint=settings.endpoint,
    )
    on_drop = metrics.record_payload_log_dropped if metrics is not None else None
    return PayloadLogger(
        target,
        max_queue=settings.payload_log_queue,
        on_drop=on_drop,
        token=settings.payload_log_token.get_secret_value() if settings.payload_log_token else None,
        batch_events=settings.payload_log_batch_events,
        batch_seconds=settings.payload_log_batch_seconds,
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
        asyncio.set_event_loop_policy(None)  # the default policy, whatever was installed before
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


class ListeningModelServer(kserve.ModelServer):
    """KServe's ``ModelServer`` (one worker) listening where the settings say, ports announced.

    KServe's own ``start`` binds REST to ``0.0.0.0:<http_port>`` inside uvicorn and gRPC to
    ``[::]:<grpc_port>``, and says neither port. This one binds the REST socket itself first
    (uvicorn's own ``Config.bind_socket`` on ``host``) and serves it with
    ``uvicorn.Server.serve(sockets=...)``; gRPC is KServe's server behind ``MessageGuard`` on the
    same host. Port 0 gets a free port from the system; both bound ports are written to
    ``port_file`` (``serving.listening.announce_ports``) once both are bound.
    """

    def __init__(
        self, *, host: str, port_file: Path | None, guarded_grpc: bool, **kwargs: Any
    ) -> None:
        super().__init__(enable_grpc=False, **kwargs)  # gRPC is the guarded server below
        self.host, self.port_file = host, port_file
        self.guarded_grpc = guarded_grpc

    def start(self, models: list[Any]) -> None:
        """KServe's single-worker ``start`` with the REST socket bound here; serve until SIGTERM."""
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = RESTServer(
            kserve.model_server.FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=1,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self._rest_server.config.host = self.host
        rest_socket = listen(self._rest_server.config)
        self.servers.append(self._serve_rest(rest_socket))
        grpc_server = None
        if self.guarded_grpc:
            grpc_server = GuardedGRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=vars(kserve.model_server.args),
                grace_period=self.grace_period,
                # All interfaces means IPv6 too, as KServe's own gRPC server listens.
                host="::" if self.host == "0.0.0.0" else self.host,  # noqa: S104
            )
            self._grpc_server = grpc_server
            self.servers.append(grpc_server.start(self.max_threads))
        self.servers.append(self._announce(rest_socket, grpc_server))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())

    async def _serve_rest(self, sock: socket.socket) -> None:
        assert self._rest_server is not None
        self._rest_server.create_application()
        await self._rest_server._server.serve(sockets=[sock])

    async def _announce(self, rest: socket.socket, grpc: GuardedGRPCServer | None) -> None:
        ports = {"http": bound_port(rest)}
        if grpc is not None:
            ports["grpc"] = await grpc.wait_bound()
        announce_ports(self.port_file, **ports)


def start_model_server(
    model: Any,
    args: argparse.Namespace,
    settings: ServingSettings,
    metrics: ServingMetrics | None,
    *,
    grpc: bool = True,
) -> None:
    """Install the request guard on KServe's app and serve ``model`` until SIGTERM.

    REST and (with ``grpc`` and ``--enable_grpc``) gRPC listen on ``settings.host``; a port of 0
    gets a free port, and the bound ports go to ``settings.port_file``.
    """
    http.install(
        kserve.model_server.app,
        max_payload_bytes=settings.max_payload_bytes,
        metrics=metrics,
        models=[model],
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    # KServe's gRPC server reads its message limits from the flags it parsed at import.
    kserve.model_server.args.grpc_max_receive_message_length = min(
        args.grpc_max_receive_message_length, settings.max_payload_bytes
    )
    server = ListeningModelServer(
        host=settings.host,
        port_file=settings.port_file,
        guarded_grpc=grpc and args.enable_grpc,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_latency_logging=args.enable_latency_logging,
    )
    # After ModelServer(), which configures logging when nothing did yet.
    configure_request_logs(
        access_log=settings.uvicorn_access_log, latency_logging=args.enable_latency_logging
    )
    if not args.enable_latency_logging:
        http.drop_timing_middleware(kserve.model_server.app)
    install_event_loop(args.event_loop)
    # The loaded model lives as long as the process: moving it (and the imports) out of the
    # collector's generations keeps full collections from walking them (~0.1 s each).
    gc.collect()
    gc.freeze()
    server.start([model])
