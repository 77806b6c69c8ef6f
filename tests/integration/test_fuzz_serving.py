"""Nothing a client sends produces a server error: V1/V2 REST and V2 gRPC, drift and trigger.

Property tests (hypothesis) drive KServe's real REST stack (endpoints, dataplane, exception
handlers) plus the predictor's guard in-process (Starlette's TestClient), and KServe's real gRPC
servicer behind the predictor's ``MessageGuard`` on a loopback port. Their strategies include
what broke the server before: NaN and Infinity, lone surrogates, nesting 1,000+ deep, binary
(V2 extension) framing with lying headers, huge counts and shapes, non-protobuf bytes.

``test_crafted_battery_*`` sends a fixed battery of 500+ crafted cases across those classes to
a real ``python -m serving.predictor`` process over V1, V2 REST and V2 gRPC, checks after every
few cases that the server still answers, and counts the answers by class.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from unittest import mock
from urllib.parse import unquote

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"
REST_MAX_PAYLOAD = 65536  # room for bodies nested thousands deep: the depth check must answer
# An error message must not carry a Python exception's name or a traceback.
EXCEPTION_TEXT = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|<class ")

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
any_text = st.lists(st.one_of(st.characters(), SURROGATES), max_size=30).map("".join)
any_float = st.floats(allow_nan=True, allow_infinity=True)
huge_ints = st.one_of(
    st.integers(-5, 70), st.integers(2**62, 2**70), st.integers(-(2**70), -(2**62))
)
json_values = st.recursive(
    st.none() | st.booleans() | huge_ints | any_float | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
v1_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"instances": st.lists(st.one_of(any_text, json_values), max_size=6)}),
    st.fixed_dictionaries(
        {
            "instances": st.lists(
                st.fixed_dictionaries(
                    {"plot": st.one_of(any_text, json_values)},
                    optional={"reviews": json_values, "title_id": st.one_of(any_text, json_values)},
                ),
                max_size=3,
            )
        }
    ),
    st.integers(9, 3000).map(lambda n: {"instances": ["A heist."] * n}),  # huge counts
)
v2_tensors = st.fixed_dictionaries(
    {
        "name": any_text,
        "shape": st.one_of(st.lists(huge_ints, max_size=3), json_values),
        "datatype": st.sampled_from(["BYTES", "FP32", "FP16", "INT64", "BOOL", "x"]),
        "data": st.one_of(
            st.lists(st.one_of(any_text, huge_ints, any_float), max_size=5), json_values
        ),
    },
    optional={"parameters": json_values},
)
v2_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"inputs": st.lists(v2_tensors, max_size=2)},
        optional={
            "id": st.one_of(any_text, json_values),
            "parameters": json_values,
            "outputs": json_values,
        },
    ),
)
raw_bytes = st.binary(max_size=300)
# Header values as clients may send them: any byte but CR, LF and NUL (HTTP cannot carry those).
header_values = st.binary(max_size=40).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
)


def dumps(value) -> bytes:
    """JSON as a careless client writes it: NaN/Infinity literals, lone surrogates escaped."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


@st.composite
def deep_bodies(draw):
    """A body nested ``depth`` >= 1,000 deep, at the top or inside a V1/V2 field."""
    depth = draw(st.integers(1000, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    core = draw(st.sampled_from(['"x"', "1", "null", "NaN", '"\\ud800"']))
    nested = opener * depth + core + closer * depth
    template = draw(
        st.sampled_from(
            [
                "{}",
                '{{"instances": {}}}',
                '{{"instances": [{{"plot": {}}}]}}',
                '{{"instances": [{{"plot": "x", "reviews": {}}}]}}',
                '{{"inputs": [{{"name": "p", "shape": [1], "datatype": "BYTES", "data": {}}}]}}',
                '{{"id": {}, "inputs": []}}',
            ]
        )
    )
    return template.format(nested).encode()


def bytes_tensor(elements: list[bytes]) -> bytes:
    """The V2 raw BYTES encoding: each element as a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


plot_bytes = st.one_of(
    st.sampled_from([b"", b" ", b"\t\n ", b"\xff\xfe", b"caf\xe9", b"\x00", b"A heist."]),
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=30),
)


@st.composite
def binary_extension_requests(draw):
    """(body, inference-header-content-length) of the V2 binary extension, often lying."""
    elements = draw(st.lists(plot_bytes, max_size=5))
    raw = draw(st.one_of(st.just(bytes_tensor(elements)), st.binary(max_size=60)))
    size = draw(st.one_of(st.just(len(raw)), huge_ints, any_float, any_text, st.booleans()))
    tensor = {
        "name": "plot",
        "shape": draw(st.one_of(st.just([len(elements)]), st.lists(huge_ints, max_size=3))),
        "datatype": draw(st.sampled_from(["BYTES", "BYTES", "FP32", "INT64", "x"])),
        "parameters": {"binary_data_size": size},
    }
    header = draw(
        st.one_of(
            st.just({"inputs": [tensor]}),
            st.just(
                {
                    "inputs": [tensor],
                    "outputs": [{"name": "scores", "parameters": {"binary_data": True}}],
                }
            ),
            json_values,
        )
    )
    head = dumps(header)
    length = draw(
        st.one_of(
            st.just(str(len(head)).encode()),
            huge_ints.map(lambda n: str(n).encode()),
            header_values,
        )
    )
    return head + raw + draw(st.sampled_from([b"", b"\x00", b"trailing"])), length


def load_model(bundle, **options):
    """The predictor model on ``bundle`` in a repository, with metrics in a private registry."""
    with mock.patch.object(sys, "argv", ["serving.predictor"]):  # kserve parses argv at import
        import kserve.model_server  # noqa: F401
    from kserve.model_repository import ModelRepository
    from prometheus_client import CollectorRegistry

    from serving.predictor.model import GenreClassifierModel
    from trending.monitoring.metrics import ServingMetrics

    model = GenreClassifierModel(MODEL, bundle_dir=bundle, max_instances=8, **options)
    model.load()
    registry = CollectorRegistry()
    model.metrics = ServingMetrics(MODEL, "fuzz", model.predictor.genres, registry)
    repository = ModelRepository()
    repository.update(model)
    return model, repository, registry


@pytest.fixture(scope="module")
def client(trained_bundle):
    from fastapi import FastAPI
    from fastapi.responses import ORJSONResponse
    from fastapi.testclient import TestClient
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    from serving.predictor import http

    model, repository, _ = load_model(trained_bundle)
    server = RESTServer(
        "unused:app", DataPlane(repository), ModelRepositoryExtension(repository), 0
    )
    app = FastAPI(default_response_class=ORJSONResponse)
    # The order of start_model_server then RESTServer.create_application: the guard first,
    # KServe's routes and handlers when the server starts.
    http.install(app, max_payload_bytes=REST_MAX_PAYLOAD, metrics=model.metrics, models=[model])
    server._register_endpoints(app)
    server._add_exception_handlers(app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_client_error_or_ok(response):
    """Below 500; an error is ``{"error": "<message>"}`` without exception names or text."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert list(body) == ["error"] and body["error"].strip(), body
        assert not EXCEPTION_TEXT.search(body["error"]), body


V1_PATH = f"/v1/models/{MODEL}:predict"
V2_PATH = f"/v2/models/{MODEL}/infer"
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
        "application/octet-stream",
    ]
)


def post(client, path, content, content_type="application/json", **headers):
    if content_type is not None:
        headers["content-type"] = content_type
    return client.post(path, content=content, headers=headers)


@FUZZ
@given(body=v1_bodies, content_type=CONTENT_TYPES)
def test_v1_json_bodies_never_500(client, body, content_type):
    assert_client_error_or_ok(post(client, V1_PATH, dumps(body), content_type))


@FUZZ
@given(body=v2_bodies, content_type=CONTENT_TYPES)
def test_v2_json_bodies_never_500(client, body, content_type):
    assert_client_error_or_ok(post(client, V2_PATH, dumps(body), content_type))


@FUZZ
@given(body=deep_bodies(), v2=st.booleans())
def test_bodies_nested_thousands_deep_are_400(client, body, v2):
    response = post(client, V2_PATH if v2 else V1_PATH, body)
    assert_client_error_or_ok(response)
    assert response.status_code == 400


@FUZZ
@given(request=binary_extension_requests(), content_type=CONTENT_TYPES)
def test_v2_binary_extension_never_500(client, request, content_type):
    body, length = request
    response = post(
        client, V2_PATH, body, content_type, **{"inference-header-content-length": length}
    )
    assert_client_error_or_ok(response)


@FUZZ
@given(raw=raw_bytes, v2=st.booleans(), content_type=CONTENT_TYPES)
def test_raw_bytes_never_500(client, raw, v2, content_type):
    assert_client_error_or_ok(post(client, V2_PATH if v2 else V1_PATH, raw, content_type))


@FUZZ
@given(
    name=st.sampled_from(
        [
            "ce-id",
            "ce-type",
            "ce-specversion",
            "ce-source",
            "ce-contenttype",
            "ce-time",
            "content-type",
            "x-request-id",
        ]
    ),
    value=header_values,
    body=st.one_of(v1_bodies, json_values),
)
def test_v1_cloudevent_and_odd_headers_never_500(client, name, value, body):
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t", name: value}
    response = client.post(V1_PATH, content=dumps(body), headers=headers)
    assert_client_error_or_ok(response)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/octet-stream",
    ],
)
def test_a_json_body_is_served_whatever_its_content_type(client, content_type):
    body = dumps({"instances": ["A haunted house."]})
    response = post(client, V1_PATH, body, content_type)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["scores"]


def test_the_fuzzed_app_does_answer_good_requests(client):
    response = client.post(f"/v1/models/{MODEL}:predict", json={"instances": ["A haunted house."]})
    assert response.status_code == 200
    body = {"inputs": [{"name": "p", "shape": [1], "datatype": "BYTES", "data": ["A heist."]}]}
    assert client.post(f"/v2/models/{MODEL}/infer", json=body).status_code == 200


# ---- V2 gRPC ------------------------------------------------------------------------------------

GRPC_MAX_MESSAGE = 4096  # what start_model_server sets from --max_payload_bytes
# Statuses that mean "the server failed", as opposed to "the request was wrong".
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


shapes = st.lists(st.integers(-2, 12) | st.integers(-(2**40), 2**40), max_size=3)


@st.composite
def bytes_requests(draw):
    """The served model, one BYTES tensor: odd elements, shapes that lie, contents or raw bytes."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    elements = draw(st.lists(plot_bytes, max_size=12))  # the fixture's limit is 8
    n = len(elements)
    shape = draw(st.one_of(st.sampled_from([[n], [n, 1]]), shapes))
    tensor = pb.ModelInferRequest.InferInputTensor(name="plot", datatype="BYTES", shape=shape)
    request = pb.ModelInferRequest(model_name=MODEL, id=draw(st.text(max_size=8)))
    carried = draw(st.sampled_from(["contents", "raw", "raw garbage"]))
    if carried == "contents":
        tensor.contents.bytes_contents.extend(elements)
    else:  # KServe's binary form: 4-byte little-endian length, then the bytes, per element
        raw = bytes_tensor(elements) if carried == "raw" else draw(st.binary(max_size=60))
        request.raw_input_contents.append(raw)
    request.inputs.append(tensor)
    return request


@st.composite
def infer_tensors(draw):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(
        name=draw(st.text(max_size=5)),
        datatype=draw(
            st.sampled_from(["BYTES", "FP32", "FP16", "INT64", "BOOL", "UINT8", "x", ""])
        ),
        shape=draw(shapes),
    )
    contents = draw(st.sampled_from(["bytes", "fp32", "int64", "bool", "none"]))
    if contents == "bytes":
        tensor.contents.bytes_contents.extend(draw(st.lists(plot_bytes, max_size=4)))
    elif contents == "fp32":
        tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=4)))
    elif contents == "int64":
        tensor.contents.int64_contents.extend(draw(st.lists(st.integers(-5, 5), max_size=4)))
    elif contents == "bool":
        tensor.contents.bool_contents.extend(draw(st.lists(st.booleans(), max_size=4)))
    if draw(st.booleans()):
        tensor.parameters["binary_data_size"].int64_param = draw(st.integers(-1, 100))
    return tensor


@st.composite
def any_requests(draw):
    """Any model name, 0-3 tensors of any datatype, raw contents that may not match the tensors."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(
        model_name=draw(st.sampled_from([MODEL] * 4 + ["", "other-model", MODEL.upper()])),
        id=draw(st.text(max_size=8)),
        inputs=draw(
            st.lists(infer_tensors(), min_size=1, max_size=1)
            | st.lists(infer_tensors(), max_size=3)
        ),
    )
    raw = draw(st.sampled_from(["none", "per tensor", "any"]))
    if raw == "per tensor":
        for tensor in request.inputs:
            tensor.ClearField("contents")
            request.raw_input_contents.append(draw(st.binary(max_size=60)))
    elif raw == "any":
        request.raw_input_contents.extend(draw(st.lists(st.binary(max_size=60), max_size=3)))
    if draw(st.booleans()):
        request.parameters["priority"].string_param = draw(st.text(max_size=5))
    return request


@st.composite
def good_requests(draw):
    """Well-formed requests: 1-8 plots as ``contents`` or raw BYTES, shape [N] or [N, 1], any id."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    letters = st.characters(categories=["L", "N"])
    plots = draw(st.lists(st.text(letters, min_size=1, max_size=60), min_size=1, max_size=8))
    encoded = [p.encode() for p in plots]
    n = len(plots)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="plot", datatype="BYTES", shape=draw(st.sampled_from([[n], [n, 1]]))
    )
    if draw(st.booleans()):
        raw = [bytes_tensor(encoded)]
    else:
        raw = []
        tensor.contents.bytes_contents.extend(encoded)
    request_id = draw(st.text(min_size=1, max_size=12))  # the payload log's ce-id
    return pb.ModelInferRequest(
        model_name=MODEL, id=request_id, inputs=[tensor], raw_input_contents=raw
    ), plots


class EventSink:
    """An httpx transport standing in for the payload-log sink: keeps every event it receives."""

    def __init__(self) -> None:
        self.events: list[httpx.Request] = []
        self.received = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.received:
            self.events.append(request)
            self.received.notify_all()
        return httpx.Response(202)


@dataclass
class GrpcTarget:
    stub: object
    model: object
    sink: EventSink
    registry: object
    channel: object

    def model_calls(self) -> tuple[float, float]:
        """(model calls, titles in them) so far: ``trending_model_batch_size`` count and sum."""
        labels = {"model": MODEL, "version": "fuzz"}
        return tuple(
            self.registry.get_sample_value(f"trending_model_batch_size_{part}", labels) or 0.0
            for part in ("count", "sum")
        )


@pytest.fixture(scope="module")
def grpc_target(trained_bundle):
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension

    from serving.predictor.grpc_server import GuardedGRPCServer
    from trending.monitoring.payload_log import PayloadLogger, PayloadLogTarget

    model, repository, registry = load_model(
        trained_bundle, max_batch_size=4, max_batch_wait_ms=1.0
    )
    sink = EventSink()
    model.payload_log = PayloadLogger(
        PayloadLogTarget("http://sink.invalid/events", "grpc-fuzz", MODEL),
        transport=httpx.MockTransport(sink),
        on_drop=model.metrics.record_payload_log_dropped,
    ).start()
    limits = {
        "grpc_max_send_message_length": 1 << 22,
        "grpc_max_receive_message_length": GRPC_MAX_MESSAGE,
    }
    server = GuardedGRPCServer(  # as start_model_server runs it, on a port the system picks
        0, DataPlane(repository), ModelRepositoryExtension(repository), limits, grace_period=1
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-fuzz-server", daemon=True)
    thread.start()
    serving = asyncio.run_coroutine_threadsafe(server.start(2), loop)
    channel = None
    try:
        port = wait_for(lambda: server.bound_port, "the gRPC server to bind")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        yield GrpcTarget(stub, model, sink, registry, channel)
    finally:
        if channel is not None:
            channel.close()
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
        serving.result(timeout=30)
        asyncio.run_coroutine_threadsafe(model.batcher.close(), loop).result(timeout=30)
        model.payload_log.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


def wait_for(check, what, timeout=30.0):
    """Poll ``check`` (a cheap attribute read) until it is truthy."""
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        value = check()
        if value:
            return value
        done.wait(0.05)
    raise TimeoutError(f"waited {timeout} s for {what}")


GRPC_METHODS = [
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
]


def raw_grpc_call(channel, method: str, payload: bytes) -> tuple[grpc.StatusCode, str]:
    """Call ``method`` with ``payload`` as the message bytes, unchecked by any client code."""
    call = channel.unary_unary(
        f"/inference.GRPCInferenceService/{method}",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    try:
        call(payload, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def grpc_status(stub, request) -> tuple[grpc.StatusCode, str, object]:
    """(status, details, response or None) of one ModelInfer call."""
    try:
        response = stub.ModelInfer(request, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", None
    return grpc.StatusCode.OK, "", response


def score_matrix(response) -> np.ndarray:
    outputs = {o.name: o for o in response.outputs}
    return np.asarray(outputs["scores"].contents.fp32_contents, dtype=np.float32).reshape(
        list(outputs["scores"].shape)
    )


GRPC_FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@GRPC_FUZZ
@given(request=st.one_of(bytes_requests(), any_requests()))
def test_grpc_requests_never_internal(grpc_target, request):
    code, details, _ = grpc_status(grpc_target.stub, request)
    assert code not in SERVER_FAULTS, details
    if code != grpc.StatusCode.OK:
        assert details.strip(), f"{code} without a message"
    if request.model_name != MODEL:  # KServe decodes the tensors before it looks the model up
        assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), details


@GRPC_FUZZ
@given(method=st.sampled_from(GRPC_METHODS), payload=st.binary(max_size=200))
def test_grpc_arbitrary_bytes_are_never_unknown(grpc_target, method, payload):
    code, details = raw_grpc_call(grpc_target.channel, method, payload)
    assert code not in SERVER_FAULTS, details
    assert not EXCEPTION_TEXT.search(details), details


def test_grpc_non_protobuf_bytes_are_invalid_argument(grpc_target):
    code, details = raw_grpc_call(grpc_target.channel, "ModelInfer", b"\x0a\x02\xff\xfe")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid inference.ModelInferRequest" in details


@pytest.mark.parametrize("method", ["RepositoryModelLoad", "RepositoryModelUnload"])
def test_grpc_repository_extension_is_refused_and_the_model_stays(grpc_target, method):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = getattr(pb, f"{method}Request")(model_name=MODEL).SerializeToString()
    code, _ = raw_grpc_call(grpc_target.channel, method, request)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    ready = grpc_target.stub.ModelReady(pb.ModelReadyRequest(name=MODEL), timeout=30)
    assert ready.ready


@settings(GRPC_FUZZ, max_examples=60)
@given(batch=st.lists(good_requests(), min_size=1, max_size=4))
def test_grpc_good_requests_answer_alone_or_batched(grpc_target, batch):
    """Concurrent requests share model calls; each gets its own rows and its payload events."""
    target = grpc_target
    with target.sink.received:
        seen = len(target.sink.events)
    dropped = target.model.payload_log.dropped
    calls_before, titles_before = target.model_calls()
    calls = [target.stub.ModelInfer.future(request, timeout=30) for request, _ in batch]
    for call, (_, plots) in zip(calls, batch, strict=True):
        response = call.result()
        scores = score_matrix(response)
        assert scores.shape == (len(plots), 19)
        np.testing.assert_allclose(scores, target.model.predictor.scores(plots), atol=1e-6)
        assert list(response.outputs[0].shape) == [len(plots)]
    # A request's titles stay in one model call; concurrent requests may share one.
    calls_after, titles_after = target.model_calls()
    assert titles_after - titles_before == sum(len(plots) for _, plots in batch)
    assert 1 <= calls_after - calls_before <= len(batch)
    with target.sink.received:  # the sender thread delivers asynchronously
        target.sink.received.wait_for(
            lambda: (
                len(target.sink.events) - seen + target.model.payload_log.dropped - dropped
                >= 2 * len(batch)
            ),
            timeout=30,
        )
        events = target.sink.events[seen:]
    assert target.model.payload_log.dropped == dropped, "payload events were dropped"
    ids = sorted(unquote(e.headers["ce-id"]) for e in events)
    assert ids == sorted(request.id for request, _ in batch for _ in range(2))


@pytest.mark.parametrize(
    ("plots", "shape", "message"),
    [
        ([b"A heist."] * 9, [9], "limit is 8"),
        ([b"caf\xe9"], [1], "not valid UTF-8"),
        ([b" \t"], [1], "must not be empty"),
        ([b"A heist."], [3], "use shape [1]"),
    ],
)
def test_grpc_bad_tensor_messages_say_what_to_fix(grpc_target, plots, shape, message):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(name="plot", datatype="BYTES", shape=shape)
    tensor.contents.bytes_contents.extend(plots)
    code, details, _ = grpc_status(
        grpc_target.stub, pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in details


def test_grpc_oversized_message_is_resource_exhausted(grpc_target):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(name="plot", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(b"x" * GRPC_MAX_MESSAGE)
    code, details, _ = grpc_status(
        grpc_target.stub, pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details


# ---- the crafted battery against a real predictor process ----------------------------------------

BATTERY_MAX_PAYLOAD = 65536
BATTERY_BODY_TIMEOUT = 1.0  # stalled bodies answer 408 after this long


@pytest.fixture(scope="module")
def live_predictor(trained_bundle, tmp_path_factory):
    """``python -m serving.predictor`` as deployed: uvicorn, KServe's app, the gRPC server."""
    from cli.processes import flags, running_service

    args = flags(
        model_name=MODEL,
        bundle_dir=trained_bundle,
        model_version=3,
        http_port=0,
        grpc_port=0,
        max_instances=8,
        max_payload_bytes=BATTERY_MAX_PAYLOAD,
        body_timeout_seconds=BATTERY_BODY_TIMEOUT,
    )
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", args, log, ready_path=ready) as predictor:
        channel = grpc.insecure_channel(f"127.0.0.1:{predictor.ports['grpc']}")
        grpc.channel_ready_future(channel).result(timeout=30)
        with httpx.Client(base_url=predictor.url, timeout=30) as client:
            yield client, channel, predictor.ports["http"]
        channel.close()


@dataclass
class Case:
    """One crafted request: its class, its protocol, and how to send it."""

    kind: str
    protocol: str  # v1, v2, http, grpc
    send: object  # (client, channel, port) -> HTTP status or grpc.StatusCode


def http_case(kind, protocol, method, path, content=b"", **headers):
    def send(client, channel, port):
        try:
            return client.request(method, path, content=content, headers=headers)
        except httpx.LocalProtocolError:  # a header value httpx will not write: write it raw
            lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: x"]
            lines += [
                k.encode() + b": " + (v if isinstance(v, bytes) else v.encode())
                for k, v in headers.items()
            ]
            lines.append(f"Content-Length: {len(content)}".encode())
            return send_raw(port, b"\r\n".join(lines) + b"\r\n\r\n" + content)

    return Case(kind, protocol, send)


def send_raw(port: int, request: bytes) -> int:
    """Write ``request`` byte for byte; the answer's status (0: closed without an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0


def socket_case(kind, protocol, request: bytes):
    """A request written byte for byte (lying Content-Length, broken framing)."""
    return Case(kind, protocol, lambda client, channel, port: send_raw(port, request))


def grpc_case(kind, method, payload: bytes):
    def send(client, channel, port):
        return raw_grpc_call(channel, method, payload)[0]

    return Case(kind, "grpc", send)


def v2_body(tensor=None, **extra):
    tensor = tensor or {"name": "plot", "shape": [1], "datatype": "BYTES", "data": ["A heist."]}
    return {"inputs": [tensor], **extra}


def crafted_cases() -> list[Case]:
    """The battery: every class of input that produced a 5xx or UNKNOWN before, and more."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    cases: list[Case] = []
    json_ct = {"content-type": "application/json"}

    def v1(kind, content, **headers):
        cases.append(http_case(kind, "v1", "POST", V1_PATH, content, **{**json_ct, **headers}))

    def v2(kind, content, path=V2_PATH, **headers):
        cases.append(http_case(kind, "v2", "POST", path, content, **{**json_ct, **headers}))

    # Depth: arrays or objects nested past every parser's limit, at the top and in each field.
    for depth in (33, 100, 999, 1000, 1001, 3000, 10000):
        for opener, closer in (("[", "]"), ('{"a":', "}")):
            nested = opener * depth + '"x"' + closer * depth
            for template in (
                "{}",
                '{{"instances": {}}}',
                '{{"instances": [{{"plot": {}}}]}}',
                '{{"instances": [{{"plot": "x", "reviews": {}}}]}}',
            ):
                v1("depth", template.format(nested).encode())
            for template in (
                '{{"id": {}, "inputs": []}}',
                '{{"inputs": {}}}',
                '{{"inputs": [{{"name": "p", "shape": [1], "datatype": "BYTES", "data": {}}}]}}',
                '{{"inputs": [], "parameters": {}}}',
            ):
                v2("depth", template.format(nested).encode())
    # Lone and misordered surrogates in every string field.
    for bad in ('"\\ud800"', '"\\udfff"', '"\\udc00\\ud800"', '"a\\ud800b"', '"\\ud800\\u0041"'):
        for template in (
            '{{"instances": [{}]}}',
            '{{"instances": [{{"plot": {}}}]}}',
            '{{"instances": [{{"plot": "x", "title_id": {}}}]}}',
            '{{"instances": [{{"plot": "x", "reviews": [{}]}}]}}',
            '{{{}: 1, "instances": ["x"]}}',
        ):
            v1("surrogate", template.format(bad).encode())
        for body in (
            v2_body(id="X"),
            v2_body({"name": "X", "shape": [1], "datatype": "BYTES", "data": ["x"]}),
            v2_body({"name": "p", "shape": [1], "datatype": "X", "data": ["x"]}),
            v2_body({"name": "p", "shape": [1], "datatype": "BYTES", "data": ["X"]}),
            v2_body(parameters={"X": 1}),
            v2_body(outputs=[{"name": "X"}]),
        ):
            v2("surrogate", json.dumps(body).replace('"X"', bad).encode())
    # NaN, Infinity and numbers that overflow a double, where KServe's models validate.
    for bad in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e309", "nan", "inf"):
        for template in (
            '{{"instances": [{}]}}',
            '{{"instances": [{{"plot": {}}}]}}',
            '{{"instances": [{{"plot": "x", "title_id": {}}}]}}',
            '{{"instances": [{{"plot": "x", "reviews": [{}]}}]}}',
            '{{"instances": ["x"], "extra": {}}}',
            "{}",
        ):
            v1("nan_infinity", template.format(bad).encode())
        for body in (
            v2_body(id=0),
            v2_body({"name": "p", "shape": [0], "datatype": "BYTES", "data": ["x"]}),
            v2_body({"name": "p", "shape": [1], "datatype": "FP32", "data": [0]}),
            v2_body(parameters={"p": 0}),
            v2_body(
                {
                    "name": "p",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": ["x"],
                    "parameters": {"p": 0},
                }
            ),
        ):
            v2(
                "nan_infinity",
                json.dumps(body).replace(": 0", ": " + bad).replace("[0]", f"[{bad}]").encode(),
            )
    # Encodings that are not UTF-8 JSON.
    good = json.dumps({"instances": ["Un café à Paris."]}, ensure_ascii=False)
    for kind, content in [
        ("encoding", good.encode("latin-1")),
        ("encoding", good.encode("utf-16")),
        ("encoding", good.encode("utf-32")),
        ("encoding", b"\xef\xbb\xbf" + good.encode()),
        ("encoding", b'{"instances": ["\xc0\xaf"]}'),
        ("encoding", b'{"instances": ["\xed\xa0\x80"]}'),
        ("encoding", b'{"instances": ["a\x00b"]}'),
        ("encoding", b"\x00" * 64),
        ("encoding", b"\xff" * 64),
        ("encoding", b""),
    ]:
        v1(kind, content)
        v2(kind, content)
    # Content types: a JSON body is served whatever the header says; a non-JSON body is a 400.
    body = json.dumps({"instances": ["A heist."]}).encode()
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
        "application/octet-stream",
        "image/png",
        "",
        "APPLICATION/JSON",
        "application/json; charset=latin-1",
    ):
        v1("content_type", body, **{"content-type": content_type})
        v1("content_type", b"plot=A heist", **{"content-type": content_type})
        v2("content_type", json.dumps(v2_body()).encode(), **{"content-type": content_type})
    # Huge counts and shapes.
    for n in (9, 100, 5000):
        v1("huge_count", json.dumps({"instances": ["A heist."] * n}).encode())
        v2(
            "huge_count",
            json.dumps(
                v2_body({"name": "p", "shape": [n], "datatype": "BYTES", "data": ["A heist."] * n})
            ).encode(),
        )
    for reviews in (51, 1000):
        v1(
            "huge_count",
            json.dumps({"instances": [{"plot": "x", "reviews": ["r"] * reviews}]}).encode(),
        )
    for shape in (
        [2**62],
        [2**63 - 1],
        [-(2**63)],
        [2**64],
        [10**30],
        [-1],
        [1, 2**62],
        [2**31, 2**31],
        [0],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ):
        v2(
            "huge_count",
            json.dumps(
                v2_body({"name": "p", "shape": shape, "datatype": "BYTES", "data": ["A heist."]})
            ).encode(),
        )
    v1("huge_count", json.dumps({"instances": [{"plot": "x" * 70000}]}).encode())
    v1("huge_count", json.dumps({"instances": [{"plot": "x", "title_id": "t" * 201}]}).encode())
    # Type confusion in every field.
    for value in ("null", "1", '"x"', "true", "{}", "[]", "[[]]", '[{"a": 1}]', "[1.5]"):
        v1("type", f'{{"instances": {value}}}'.encode())
        v1("type", f'{{"instances": [{{"plot": {value}}}]}}'.encode())
        v1("type", f'{{"instances": [{{"plot": "x", "reviews": {value}}}]}}'.encode())
        for field in ("id", "inputs", "parameters", "outputs"):
            v2(
                "type",
                json.dumps(v2_body()).replace("}", f', "{field}": {value}}}', 1).encode()
                if field != "inputs"
                else f'{{"inputs": {value}}}'.encode(),
            )
        for field in ("name", "shape", "datatype", "data", "parameters"):
            tensor = json.dumps({"name": "p", "shape": [1], "datatype": "BYTES", "data": ["x"]})
            tensor = tensor.replace(f'"{field}": ', f'"{field}": {value}, "_{field}": ')
            if field == "parameters":
                tensor = tensor[:-1] + f', "parameters": {value}}}'
            v2("type", f'{{"inputs": [{tensor}]}}'.encode())
    for datatype in ("FP16", "FP32", "INT8", "UINT64", "BOOL", "BF16", "", "bytes"):
        v2(
            "type",
            json.dumps(
                v2_body({"name": "p", "shape": [1], "datatype": datatype, "data": [1]})
            ).encode(),
        )
    # The V2 binary tensor extension: the header and the framing, lying in every way.
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "plot",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 12},
                }
            ]
        }
    ).encode()
    raw = bytes_tensor([b"A heist."])
    for length in (
        str(len(head)),
        "abc",
        "-1",
        "0",
        "",
        " ",
        "1e3",
        "0x10",
        str(len(head) + 1),
        str(len(head) - 1),
        str(2**64),
        "\uff19",
        "1" * 400,
        "\xff\xfe",
    ):
        v2("binary_header", head + raw, **{"inference-header-content-length": length.encode()})
    for size in (-1, 0, 11, 13, 2**40, "12", 12.5, True, None, [12], {"a": 1}):
        bad_head = head.replace(b": 12", b": " + json.dumps(size).encode())
        v2(
            "binary_framing",
            bad_head + raw,
            **{"inference-header-content-length": str(len(bad_head))},
        )
    for payload in (
        struct.pack("<I", 100) + b"short",
        struct.pack("<I", 3) + b"\xff\xfe\xfd",
        b"\x01\x00",
        struct.pack("<I", 2**32 - 1) + b"x" * 7,
        raw + b"tail",
        bytes_tensor([b""]),
        bytes_tensor([b"\x00" * 5]),
    ):
        sized = head.replace(b": 12", b": " + str(len(payload)).encode())
        v2(
            "binary_framing",
            sized + payload,
            **{"inference-header-content-length": str(len(sized))},
        )
    for header in (
        b"[]",
        b"1",
        b'{"inputs": 1}',
        b'{"inputs": [1]}',
        b'{"inputs": [{}]}',
        b'{"inputs": [{"parameters": []}]}',
        b"NaN",
        b'{"inputs": [{"datatype": "FP32", "parameters": {"binary_data_size": 4}}]}',
    ):
        v2(
            "binary_framing",
            header + b"\x00\x00\x80\x7f",
            **{"inference-header-content-length": str(len(header))},
        )
    outputs = json.dumps(
        {
            "inputs": [
                {
                    "name": "plot",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 12},
                }
            ],
            "outputs": [{"name": "scores", "parameters": {"binary_data": True}}, {"name": "nope"}],
        }
    ).encode()
    v2("binary_framing", outputs + raw, **{"inference-header-content-length": str(len(outputs))})
    # CloudEvents headers on V1.
    ce = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"}
    for name, value in [
        ("ce-specversion", "0.1"),
        ("ce-specversion", ""),
        ("ce-id", ""),
        ("ce-time", "yesterday"),
        ("ce-contenttype", "application/json"),
        ("ce-contenttype", "text/plain"),
        ("ce-source", "%ff%fe"),
        ("ce-type", "\xff"),
        ("ce-dataschema", "::"),
        ("ce-id", "%"),
    ]:
        v1("cloudevent", body, **{**ce, name: value.encode("latin-1")})
    for structured in (
        {"specversion": "1.0"},
        {
            "specversion": "1.0",
            "id": 1,
            "source": "s",
            "type": "t",
            "data": {"instances": ["x"]},
        },
        {"specversion": "9", "id": "1", "source": "s", "type": "t", "data": 1},
    ):
        v1(
            "cloudevent",
            json.dumps(structured).encode(),
            **{"content-type": "application/cloudevents+json"},
        )
    # Versioned paths and other routes.
    for version in ("3", "4", "0", "03", "latest", "%00", "..", "x" * 300):
        v2(
            "versioned",
            json.dumps(v2_body()).encode(),
            path=f"/v2/models/{MODEL}/versions/{version}/infer",
        )
        for suffix in ("", "/ready"):
            cases.append(
                http_case(
                    "versioned", "v2", "GET", f"/v2/models/{MODEL}/versions/{version}{suffix}"
                )
            )
    for path in (
        "/v2/models/other/infer",
        f"/v2/models/{MODEL}/versions/3/other",
        f"/v2/repository/models/{MODEL}/load",
        f"/v2/repository/models/{MODEL}/unload",
        f"/v1/models/{MODEL}:explain",
        "/v1/models/other:predict",
        "/%ff",
        "/v2/%00",
    ):
        cases.append(http_case("route", "http", "POST", path, body, **json_ct))
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        cases.append(http_case("route", "http", method, V1_PATH, body, **json_ct))
        cases.append(http_case("route", "http", method, V2_PATH, body, **json_ct))
    # Framing written byte for byte: lying or broken Content-Length, broken chunks, stalls.
    for path in (V1_PATH, V2_PATH):
        start = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
        for request in (
            start + b"Content-Length: abc\r\n\r\n" + body,
            start + b"Content-Length: -5\r\n\r\n" + body,
            start + b"Content-Length: 99999999999999999999\r\n\r\n" + body,
            start + b"Content-Length: 5\r\nContent-Length: 7\r\n\r\n" + body,
            start + f"Content-Length: {len(body) + 50}\r\n\r\n".encode() + body,  # stalls: 408
            start + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body,
            start + b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"ins\r\n',  # stalls: 408
            start + b"Content-Length: 2\r\n\r\n" + body,
        ):
            cases.append(socket_case("framing", "http", request))
    # gRPC: bytes that are no protobuf message, and messages that lie.
    garbage = [
        b"\xff\xfe\x00garbage",
        b"\x0a\x02\xff\xfe",
        b"\x0a\xff\xff\xff\xff\x0f",
        b"\x12" * 50,
        b"\x08" + b"\xff" * 20,
    ]
    for method in GRPC_METHODS:
        for payload in garbage:
            cases.append(grpc_case("grpc_garbage", method, payload))

    def infer(**fields):
        tensor = fields.pop("tensor", {"name": "plot", "datatype": "BYTES", "shape": [1]})
        contents = fields.pop("contents", [b"A heist."])
        request = pb.ModelInferRequest(model_name=fields.pop("model_name", MODEL), **fields)
        t = request.inputs.add(**tensor)
        t.contents.bytes_contents.extend(contents)
        return request.SerializeToString()

    for shape in ([2**62], [-1], [-(2**63)], [0], [1, 2**62], [1] * 20):
        cases.append(
            grpc_case(
                "grpc_message",
                "ModelInfer",
                infer(tensor={"name": "p", "datatype": "BYTES", "shape": shape}),
            )
        )
    for datatype in ("FP16", "FP32", "INT64", "BOOL", "", "x"):
        cases.append(
            grpc_case(
                "grpc_message",
                "ModelInfer",
                infer(tensor={"name": "p", "datatype": datatype, "shape": [1]}),
            )
        )
    for contents in ([b"\xff\xfe"], [b""], [b"x"] * 9, [b"\x00"], []):
        cases.append(grpc_case("grpc_message", "ModelInfer", infer(contents=contents)))
    for raw_contents in ([b"\xff"], [bytes_tensor([b"A"]), b"extra"], [b"\x05\x00\x00\x00ab"]):
        cases.append(
            grpc_case(
                "grpc_message", "ModelInfer", infer(raw_input_contents=raw_contents, contents=[])
            )
        )
    for name in ("", "other", MODEL.upper()):
        cases.append(grpc_case("grpc_message", "ModelInfer", infer(model_name=name)))
        cases.append(
            grpc_case(
                "grpc_message",
                "ModelMetadata",
                pb.ModelMetadataRequest(name=name, version="9").SerializeToString(),
            )
        )
    return cases


# gRPC statuses that mean "the server failed" rather than "the request was wrong".
GRPC_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}


def assert_healthy(client, channel):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    assert client.get("/v2/health/ready").status_code == 200
    answer = client.post(V1_PATH, json={"instances": ["A haunted house."]})
    assert answer.status_code == 200, answer.text
    stub = GRPC_STUB(channel)
    assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL), timeout=30).ready


def GRPC_STUB(channel):
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    return pb_grpc.GRPCInferenceServiceStub(channel)


def test_crafted_battery_gets_no_5xx_and_the_server_stays_healthy(live_predictor, capsys):
    client, channel, port = live_predictor
    cases = crafted_cases()
    assert len(cases) >= 500
    answers: Counter[tuple[str, str, str]] = Counter()
    faults = []
    for i, case in enumerate(cases):
        outcome = case.send(client, channel, port)
        if isinstance(outcome, httpx.Response):
            code = str(outcome.status_code)
            if outcome.status_code >= 500:
                faults.append((case.kind, case.protocol, code, outcome.text[:200]))
            elif outcome.status_code >= 400:
                message = outcome.json().get("error", "")
                if not message or EXCEPTION_TEXT.search(message):
                    faults.append((case.kind, case.protocol, code, outcome.text[:200]))
        elif isinstance(outcome, grpc.StatusCode):
            code = outcome.name
            if outcome in GRPC_FAULTS:
                faults.append((case.kind, case.protocol, code, ""))
        else:
            code = str(outcome)
            if outcome >= 500:
                faults.append((case.kind, case.protocol, code, ""))
        answers[(case.kind, case.protocol, code)] += 1
        if i % 25 == 24:
            assert_healthy(client, channel)
    assert_healthy(client, channel)
    with capsys.disabled():
        by_class = Counter()
        for (_, protocol, code), n in answers.items():
            by_class[(protocol, code)] += n
        print(
            f"\ncrafted battery: {len(cases)} cases; by protocol and answer: "
            f"{dict(sorted(by_class.items()))}"
        )
    assert not faults, faults
    assert sum(n for (_, protocol, _), n in answers.items() if protocol == "grpc") >= 50


def test_a_json_body_is_predicted_whatever_the_content_type_says(live_predictor):
    client, _, _ = live_predictor
    body = json.dumps({"instances": ["A haunted house."]}).encode()
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
    ):
        answer = client.post(V1_PATH, content=body, headers={"content-type": content_type})
        assert answer.status_code == 200, (content_type, answer.text)


def test_stalled_bodies_are_answered_408_and_closed(live_predictor):
    """300 connections that send headers and part of a body, then nothing: none stays open."""
    client, channel, port = live_predictor
    request = (
        f"POST {V1_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        'Content-Length: 1000\r\n\r\n{"instances": ['
    ).encode()
    sockets = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(request)
            sockets.append(sock)
        for sock in sockets:
            answer = b""
            while chunk := sock.recv(4096):  # until the server closes the connection
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
            assert b"did not arrive within" in answer
    finally:
        for sock in sockets:
            sock.close()
    assert_healthy(client, channel)


# ---- the drift service, the retrain trigger and the transformer ----------------------------------

DRIFT_TOKEN = "drift-token-0123456789abcdef"
TRIGGER_TOKEN = "trigger-token-0123456789abcdef"
REQUEST_EVENT = "org.kubeflow.serving.inference.request"


@pytest.fixture(scope="module")
def drift_client(trained_bundle):
    from fastapi.testclient import TestClient

    from serving.drift.app import DriftService, create_app
    from trending.data.synthetic import generate_titles
    from trending.features.featurize import texts_of
    from trending.genres import DEFAULT_GENRES
    from trending.monitoring.drift import DriftMonitor, fit_drift_detector, load_drift_detector

    reference = generate_titles(200, seed=1)
    genres = list(DEFAULT_GENRES)
    scores = np.array([[1.0 if g in gs else 0.0 for g in genres] for gs in reference["genres"]])
    folder = trained_bundle.parent / "drift-fuzz"
    fit_drift_detector(texts_of(reference), scores, folder, genres=genres)
    detector = load_drift_detector(folder)
    service = DriftService(
        DriftMonitor(lambda m, v: detector, window_size=100, min_window=10),
        model_name=MODEL,
        default_version="1",
        interval=3600,
        token=DRIFT_TOKEN,
    )
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client


event_bodies = st.one_of(
    v1_bodies,
    json_values,
    deep_bodies(),
    raw_bytes,
    st.fixed_dictionaries(  # structured mode
        {
            "specversion": st.sampled_from(["1.0", "0.3", "x"]),
            "id": any_text,
            "source": any_text,
            "type": st.sampled_from([REQUEST_EVENT, "x"]),
            "data": st.one_of(v1_bodies, json_values),
        }
    ),
)


@FUZZ
@given(
    body=event_bodies,
    ce_type=st.sampled_from([REQUEST_EVENT, "org.kubeflow.serving.inference.response", "x"]),
    extra=st.dictionaries(
        st.sampled_from(
            ["ce-modelid", "ce-modelversion", "ce-time", "ce-specversion", "content-type"]
        ),
        header_values,
        max_size=2,
    ),
)
def test_drift_events_never_500(drift_client, body, ce_type, extra):
    content = body if isinstance(body, bytes) else dumps(body)
    headers = {
        "authorization": f"Bearer {DRIFT_TOKEN}",
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "fuzz",
        "ce-type": ce_type,
        "content-type": "application/json",
        **extra,
    }
    assert_client_error_or_ok(drift_client.post("/", content=content, headers=headers))


@FUZZ
@given(authorization=header_values, body=v1_bodies)
def test_drift_events_with_a_forged_token_are_401(drift_client, authorization, body):
    headers = {
        "authorization": authorization,
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "forger",
        "ce-type": REQUEST_EVENT,
    }
    response = drift_client.post("/", content=dumps(body), headers=headers)
    assert response.status_code == 401, response.text


@pytest.fixture(scope="module")
def trigger_client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from serving.trigger.app import TriggerService, create_app
    from trending.rollout.retrain import RetrainCoordinator

    class NoLauncher:
        def launch(self, request):
            return "run-fuzz"

    registry = (tmp_path_factory.mktemp("registry")).resolve().as_uri()
    service = TriggerService(RetrainCoordinator(registry, NoLauncher()), TRIGGER_TOKEN)
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client


alert_bodies = st.one_of(
    json_values,
    deep_bodies(),
    raw_bytes,
    st.fixed_dictionaries(
        {
            "version": st.sampled_from(["4", 4, "x"]),
            "groupKey": any_text,
            "status": st.sampled_from(["firing", "resolved", "x"]),
            "receiver": any_text,
            "alerts": st.lists(
                st.fixed_dictionaries(
                    {
                        "status": st.sampled_from(["firing", "x"]),
                        "labels": st.dictionaries(
                            st.sampled_from(["action", "model", "reason", "window", "alertname"]),
                            any_text,
                        ),
                        "startsAt": st.one_of(st.just("2024-05-01T10:00:00Z"), any_text, any_float),
                    }
                ),
                max_size=3,
            ),
        }
    ),
)


@FUZZ
@given(body=alert_bodies)
def test_trigger_webhooks_never_500(trigger_client, body):
    content = body if isinstance(body, bytes) else dumps(body)
    response = trigger_client.post(
        "/alerts", content=content, headers={"authorization": f"Bearer {TRIGGER_TOKEN}"}
    )
    assert response.status_code < 500, response.text


@pytest.fixture(scope="module")
def transformer_client():
    """The transformer's KServe app and guard; a store that knows no title (no predictor call)."""
    from fastapi import FastAPI
    from fastapi.responses import ORJSONResponse
    from fastapi.testclient import TestClient
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    from serving.predictor import http
    from serving.transformer.model import FeastTransformer

    class EmptyStore:
        def online(self, title_ids):
            return [None] * len(title_ids)

    model = FeastTransformer(MODEL, open_store=EmptyStore, max_instances=8)
    model.load()
    repository = ModelRepository()
    repository.update(model)
    server = RESTServer(
        "unused:app", DataPlane(repository), ModelRepositoryExtension(repository), 0
    )
    app = FastAPI(default_response_class=ORJSONResponse)
    http.install(app, max_payload_bytes=REST_MAX_PAYLOAD, metrics=None, models=[model])
    server._register_endpoints(app)
    server._add_exception_handlers(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@FUZZ
@given(
    body=st.one_of(
        v1_bodies,
        deep_bodies(),
        raw_bytes,
        st.lists(any_text, max_size=10).map(lambda ids: {"instances": ids}),
    ),
    v2=st.booleans(),
    content_type=CONTENT_TYPES,
)
def test_transformer_never_500(transformer_client, body, v2, content_type):
    content = body if isinstance(body, bytes) else dumps(body)
    response = post(transformer_client, V2_PATH if v2 else V1_PATH, content, content_type)
    assert_client_error_or_ok(response)
