"""The predictor over Open Inference Protocol V2 gRPC, through KServe's own gRPC client."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import numpy as np
import pytest

from cli.processes import flags, running_service

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"
HORROR = "A haunted house, a possessed demon, a curse and a night of terror."
MAX_PAYLOAD = 16384  # --max_payload_bytes also caps gRPC messages


@pytest.fixture(scope="module")
def server(trained_bundle, tmp_path_factory):
    args = flags(
        model_name=MODEL,
        bundle_dir=trained_bundle,
        model_version=3,
        http_port=0,
        grpc_port=0,
        max_instances=4,
        max_payload_bytes=MAX_PAYLOAD,
    )
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", args, log, ready_path=ready) as predictor:
        yield predictor.url, f"127.0.0.1:{predictor.ports['grpc']}"


def infer(target: str, values: list, datatype: str = "BYTES", shape: list | None = None):
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    async def call():
        client = InferenceGRPCClient(target, retries=0, timeout=30)
        tensor = InferInput(name="plot", shape=shape or [len(values)], datatype=datatype)
        tensor.set_data_from_numpy(
            np.array(values, dtype=object if datatype == "BYTES" else np.float32)
        )
        try:
            return await client.infer(InferRequest(MODEL, [tensor], request_id="g-1"))
        finally:
            await client.close()

    return asyncio.run(call())


def test_grpc_infer_returns_genres_and_scores(server):
    response = infer(server[1], [HORROR, "A detective chases a gangster after a heist."])
    outputs = {o.name: o for o in response.outputs}
    assert response.id == "g-1"
    assert outputs["scores"].as_numpy().shape == (2, 19)
    genres = [g.decode() if isinstance(g, bytes) else g for g in outputs["genres"].as_numpy()]
    assert "Horror" in genres[0].split(",")


@pytest.mark.parametrize(
    ("values", "datatype", "message"),
    [
        (["   "], "BYTES", "must not be empty"),
        ([1.0], "FP32", "BYTES"),
        (["a", "b", "c", "d", "e"], "BYTES", "limit is 4"),
    ],
)
def test_grpc_bad_requests_are_invalid_argument(server, values, datatype, message):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        infer(server[1], values, datatype)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


def test_grpc_message_over_the_payload_cap_is_resource_exhausted(server):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        infer(server[1], ["x" * MAX_PAYLOAD])
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_PAYLOAD) in info.value.details()  # grpc names the limit


def test_grpc_requests_are_counted_with_http_equivalent_codes(server):
    def count(code: str) -> float:
        for line in httpx.get(f"{server[0]}/metrics").text.splitlines():
            wanted = ("trending_requests_total{", 'protocol="grpc-v2"', f'code="{code}"')
            if line.startswith(wanted[0]) and all(w in line for w in wanted[1:]):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    ok, bad = count("200"), count("400")
    infer(server[1], [HORROR])
    with pytest.raises(grpc.aio.AioRpcError):
        infer(server[1], [""])
    assert (count("200") - ok, count("400") - bad) == (1, 1)


def test_grpc_model_metadata_matches_the_rest_metadata(server):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    rest = httpx.get(f"{server[0]}/v2/models/{MODEL}").json()
    with grpc.insecure_channel(server[1]) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        got = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), timeout=30)
        held = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL, version="3"), timeout=30)
        refused = {}
        for name, version in ((MODEL, "9"), ("other", "")):
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelMetadata(pb.ModelMetadataRequest(name=name, version=version), timeout=30)
            refused[name] = (info.value.code(), info.value.details())
    assert list(got.versions) == ["3"] == rest["versions"]  # --model_version 3
    assert got.platform == rest["platform"] and got.platform.startswith("trending-")
    tensors = {t.name: (t.datatype, list(t.shape)) for t in [*got.inputs, *got.outputs]}
    assert tensors == {
        "plot": ("BYTES", [-1]),
        "genres": ("BYTES", [-1]),
        "scores": ("FP32", [-1, 19]),
    }
    assert held == got
    assert refused[MODEL][0] == grpc.StatusCode.NOT_FOUND and "not 9" in refused[MODEL][1]
    assert refused["other"][0] == grpc.StatusCode.NOT_FOUND
