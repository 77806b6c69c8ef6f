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
