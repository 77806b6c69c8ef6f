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
import struct
import sys
import threading
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
    [None, "application/json", "text/plain", "application/x-www-form-urlencoded",
     "application/json; charset=utf-8", "application/cloudevents+json", "application/octet-stream"]
)  # fmt: skip


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
    name=st.sampled_from(["ce-id", "ce-type", "ce-specversion", "ce-source", "ce-contenttype",
                          "ce-time", "content-type", "x-request-id"]),
    value=header_values,
    body=st.one_of(v1_bodies, json_values),
)  # fmt: skip
def test_v1_cloudevent_and_odd_headers_never_500(client, name, value, body):
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t", name: value}
    response = client.post(V1_PATH, content=dumps(body), headers=headers)
    assert_client_error_or_ok(response)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8",
     "APPLICATION/JSON", "application/octet-stream"],
)  # fmt: skip
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
    "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
    "RepositoryModelLoad", "RepositoryModelUnload",
]  # fmt: skip


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
