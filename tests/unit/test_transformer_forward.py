"""The transformer's hop to the predictor (``PredictorClient``): what it sends, and how each of the
predictor's answers reaches the client. The predictor is a small aiohttp app on loopback in this
process, so every status and failure can be staged.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest
from aiohttp import web
from kserve.predictor_config import PredictorConfig

from serving.transformer.__main__ import build_parser
from serving.transformer.model import FeastTransformer, PredictorClient, PredictorUnavailableError
from trending.modelling.bundle.inference import InvalidRequestError

MODEL = "genres"
FEATURES = {"instances": [{"title_id": "t1", "plot": "a ghost story", "reviews": []}]}


def flags_named(message: str) -> list[str]:
    """The flags an error names, each one the transformer's own parser accepts (else fail)."""
    named = re.findall(r"--[a-z_]+", message)
    options = {o for action in build_parser()._actions for o in action.option_strings}
    assert named and set(named) <= options, (named, message)
    return named


def config(port: int, *, timeout: int = 5, retries: int = 0) -> PredictorConfig:
    return PredictorConfig(
        predictor_host=f"127.0.0.1:{port}",
        predictor_request_timeout_seconds=timeout,
        predictor_request_retries=retries,
    )


async def with_predictor(handler, scenario) -> Any:
    """Run ``scenario(port, seen)`` against an app answering ``:predict`` with ``handler``."""
    seen: list[tuple[Any, Any]] = []

    async def predict(request: web.Request) -> web.StreamResponse:
        seen.append((request.headers.copy(), await request.json()))  # case-insensitive
        return await handler(request)

    app = web.Application()
    app.router.add_post(f"/v1/models/{MODEL}:predict", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        return await scenario(port, seen)
    finally:
        await runner.cleanup()


async def failure(port: int, expected: type[Exception], **settings: int) -> Exception:
    """The error one forward to the predictor at ``port`` raises."""
    client = PredictorClient(config(port, **settings))
    try:
        with pytest.raises(expected) as caught:
            await client.predict(MODEL, FEATURES, {})
    finally:
        await client.close()
    return caught.value


def answer(status: int, body: Any = None, text: str | None = None):
    async def handler(_: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text)
        return web.json_response(body, status=status)

    return handler


def test_the_features_go_to_the_models_v1_route_and_its_answer_comes_back() -> None:
    predictions = {"predictions": [{"title_id": "t1", "genres": ["Horror"]}]}

    async def scenario(port, seen):
        client = PredictorClient(config(port))
        try:
            result = await client.predict(MODEL, FEATURES, {"x-request-id": "r-7"})
        finally:
            await client.close()
        return result, seen

    result, seen = asyncio.run(with_predictor(answer(200, predictions), scenario))
    assert result == predictions
    headers, body = seen[0]
    assert body == FEATURES
    assert headers["x-request-id"] == "r-7"
    assert headers["Content-Type"] == "application/json"


def test_the_transformer_forwards_only_kserves_forwardable_headers() -> None:
    async def scenario(port, seen):
        model = FeastTransformer(MODEL, open_store=lambda: None)
        model._predictor = PredictorClient(config(port))
        try:
            await model.predict(FEATURES, {"x-request-id": "r-1", "cookie": "secret=1"})
        finally:
            await model._predictor.close()
        return seen

    seen = asyncio.run(with_predictor(answer(200, {"predictions": []}), scenario))
    headers, _ = seen[0]
    assert headers["x-request-id"] == "r-1"
    assert "cookie" not in {k.lower() for k in headers}


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_a_predictor_4xx_stays_that_4xx_with_its_message(status: int) -> None:
    async def scenario(port, _):
        return await failure(port, InvalidRequestError)

    error = asyncio.run(with_predictor(answer(status, {"error": "plot is empty"}), scenario))
    assert error.status == status
    assert "plot is empty" in str(error)


@pytest.mark.parametrize(
    ("status", "body", "text", "says"),
    [
        (500, {"error": "boom"}, None, "answered 500: boom"),
        (503, None, "upstream overloaded", "answered 503: upstream overloaded"),
        (200, None, "<html>not json</html>", "not JSON"),
    ],
)
def test_a_failing_predictor_is_a_502_saying_what_it_answered(status, body, text, says) -> None:
    async def scenario(port, _):
        return await failure(port, PredictorUnavailableError)

    error = asyncio.run(with_predictor(answer(status, body, text), scenario))
    assert error.status == 502
    assert says in str(error)


def test_an_unreachable_predictor_is_a_502_naming_the_flag_to_check() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    error = asyncio.run(failure(port, PredictorUnavailableError, retries=2))
    assert error.status == 502
    assert f"127.0.0.1:{port}" in str(error)
    assert flags_named(str(error)) == ["--predictor_host"]


def test_a_predictor_slower_than_the_timeout_is_a_502_naming_the_timeout_flag() -> None:
    released = asyncio.Event()

    async def slow(_: web.Request) -> web.StreamResponse:
        await released.wait()  # answers only after the client gave up
        return web.json_response({"predictions": []})

    async def scenario(port, _):
        try:
            return await failure(port, PredictorUnavailableError, timeout=1)
        finally:
            released.set()

    error = asyncio.run(with_predictor(slow, scenario))
    assert flags_named(str(error)) == ["--predictor_request_timeout_seconds"]


def test_a_predictor_that_breaks_off_its_answer_is_a_502() -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-length": "1000"})
        await response.prepare(request)
        await response.write(b'{"predictions": [')  # then the connection goes
        request.transport.close()
        return response

    async def scenario(port, _):
        return await failure(port, PredictorUnavailableError)

    error = asyncio.run(with_predictor(broken, scenario))
    assert error.status == 502 and "broke off" in str(error)


def test_one_connection_serves_consecutive_requests() -> None:
    peers: list[Any] = []

    async def record_peer(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"predictions": []})

    async def scenario(port, _):
        client = PredictorClient(config(port))
        try:
            for _ in range(5):
                await client.predict(MODEL, FEATURES, {})
        finally:
            await client.close()

    asyncio.run(with_predictor(record_peer, scenario))
    assert len(peers) == 5 and len(set(peers)) == 1
