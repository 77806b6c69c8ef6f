"""KServe's V2 gRPC server with a guard in front: unreadable messages are INVALID_ARGUMENT.

gRPC's server decodes each request message before any interceptor or servicer sees it; a body
that is not the method's protobuf message fails there and the client gets ``UNKNOWN`` with a
Python exception's text. ``MessageGuard`` decodes instead and answers ``INVALID_ARGUMENT`` with
what to send. It also refuses the repository extension (load/unload), as the REST guard does.

``ModelMetadata`` answers what the REST metadata route answers (``versions``, ``platform``,
tensors; :func:`serving.predictor.http.model_metadata`): KServe's servicer leaves ``versions``
out and the platform empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Any

import grpc
from grpc import aio
from kserve.errors import ModelNotFound
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from serving.predictor.http import model_metadata

_UNREADABLE = object()
REPOSITORY_METHODS = ("RepositoryModelLoad", "RepositoryModelUnload")


class MessageGuard(aio.ServerInterceptor):
    """Decode unary requests safely; refuse the repository extension."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the unary-unary handler of a known method; leave everything else alone."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        decode = handler.request_deserializer
        behaviour = handler.unary_unary

        def decode_or_mark(raw: bytes) -> Any:
            try:
                return decode(raw)
            except Exception:  # DecodeError, invalid UTF-8 in a string field, ...
                return _UNREADABLE

        async def guarded(request: Any, context: aio.ServicerContext) -> Any:
            if method in REPOSITORY_METHODS:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "the model repository extension is disabled: this server serves the one "
                    "verified bundle it loaded at start",
                )
            if request is _UNREADABLE:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the request is not a valid inference.{method}Request protobuf message "
                    "(grpc_predict_v2.proto; strings must be UTF-8): send the serialized message",
                )
            return await behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=decode_or_mark,
            response_serializer=handler.response_serializer,
        )


class MetadataServicer(InferenceServicer):
    """KServe's servicer whose ``ModelMetadata`` carries versions, platform and tensors."""

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        """The REST metadata as a protobuf message; another version than the one held: NOT_FOUND."""
        try:
            model = self._data_plane.get_model_from_registry(request.name)
        except ModelNotFound:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"model {request.name!r} is not served here"
            )
        described = model_metadata(model)
        versions = [str(v) for v in described.get("versions") or []]
        if request.version and request.version not in versions:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model {request.name} has version {', '.join(versions) or 'none'} here, "
                f"not {request.version}: ask for that version, or leave the version empty",
            )
        return pb.ModelMetadataResponse(
            name=described["name"],
            versions=versions,
            platform=described.get("platform", ""),
            inputs=[_tensor(t) for t in described.get("inputs", [])],
            outputs=[_tensor(t) for t in described.get("outputs", [])],
        )


def _tensor(described: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    """One tensor's metadata (the protobuf message has no ``parameters``)."""
    return pb.ModelMetadataResponse.TensorMetadata(
        name=described["name"], datatype=described["datatype"], shape=described["shape"]
    )


class GuardedGRPCServer(GRPCServer):
    """KServe's ``GRPCServer`` with ``MessageGuard`` first among its interceptors.

    It listens on ``host`` (default: all interfaces, IPv4 and IPv6, as KServe's own server).
    ``bound_port`` is the port it listens on once started (the one asked for, or the one the
    system chose for port 0); ``await wait_bound()`` returns it as soon as it is bound.
    """

    bound_port: int | None = None

    def __init__(self, *args: Any, host: str = "::", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host = host
        self._bound = asyncio.Event()

    async def wait_bound(self) -> int:
        """The bound port, once :meth:`start` has bound it."""
        await self._bound.wait()
        assert self.bound_port is not None
        return self.bound_port

    async def start(self, max_workers: int) -> None:
        """Build the server as KServe does (same options and servicer), then serve."""
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(MessageGuard(), LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                (
                    "grpc.max_receive_message_length",
                    self._kwargs.get("grpc_max_receive_message_length"),
                ),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            MetadataServicer(self._data_plane, self._model_repository_extension), self._server
        )
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.bound_port = self._server.add_insecure_port(f"{host}:{self._port}")
        self._bound.set()
        await self._server.start()
        await self._server.wait_for_termination()
