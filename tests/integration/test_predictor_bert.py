"""The BERT family served: V1, V2 REST and V2 gRPC answer what the model answers in-process, and
concurrent requests are joined into model batches without mixing up their answers.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fixtures.metrics import sample, scrape

from cli.processes import flags, running_service
from trending.modelling.families import GenrePredictor
from trending.modelling.training import train_bundle

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MODEL = "genre-bert"
# A few optimizer steps and no TF-IDF blend: every answer comes from the encoder.
TINY_BERT = {
    "max_length": 48,
    "epochs": 1,
    "batch_size": 16,
    "max_steps": 2,
    "threads": 2,
    "tfidf_blend": False,
}
BATCH_WAIT_MS = 300  # long, so that concurrent requests meet in one batch even on a busy CI
PLOTS = [
    "A haunted house, a possessed demon, a curse and a night of terror.",
    "A detective and the police chase a gangster after a heist and a murder.",
    "Two friends fall in love during a summer wedding in Paris.",
    "A spaceship crew finds an alien signal beyond the galaxy.",
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, titles):
    directory = tmp_path_factory.mktemp("bert-bundle")
    train_bundle(titles.iloc[:80], directory, family="bert", params=TINY_BERT, seed=3)
    return directory


@pytest.fixture(scope="module")
def in_process(bundle):
    """Scores of the same bundle without a server, one title at a time."""
    predictor = GenrePredictor.from_bundle(bundle)
    return {plot: predictor.scores([plot])[0] for plot in PLOTS}, predictor.genres


@pytest.fixture(scope="module")
def server(bundle, tmp_path_factory):
    args = flags(
        model_name=MODEL,
        bundle_dir=bundle,
        model_version=5,
        http_port=0,
        grpc_port=0,
        max_batch_size=8,
        max_batch_wait_ms=BATCH_WAIT_MS,
    )
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", args, log, ready_path=ready) as predictor:
        yield predictor.url, f"127.0.0.1:{predictor.ports['grpc']}", log


def v1_scores(url: str, plot: str, genres: list[str]) -> np.ndarray:
    response = httpx.post(
        f"{url}/v1/models/{MODEL}:predict", json={"instances": [plot]}, timeout=60
    )
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    return np.array([prediction["scores"][g] for g in genres])


def test_ready_line_names_the_family_and_the_device(server):
    text = server[2].read_text()
    assert f"ready: serving {MODEL} version 5 (bert) on CPU, batching" in text


def test_v1_and_v2_rest_answer_the_in_process_scores(server, in_process):
    expected, genres = in_process
    for plot in PLOTS[:2]:
        np.testing.assert_allclose(v1_scores(server[0], plot, genres), expected[plot], atol=1e-4)

    tensor = {"name": "plot", "shape": [2], "datatype": "BYTES", "data": PLOTS[2:]}
    response = httpx.post(f"{server[0]}/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.text
    body = response.json()
    outputs = {o["name"]: o for o in body["outputs"]}
    assert body["parameters"]["genre_order"].split(",") == genres
    scores = np.array(outputs["scores"]["data"]).reshape(outputs["scores"]["shape"])
    np.testing.assert_allclose(scores, [expected[p] for p in PLOTS[2:]], atol=1e-4)


def test_v2_grpc_answers_the_in_process_scores(server, in_process):
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    expected, _ = in_process

    async def call():
        client = InferenceGRPCClient(server[1], retries=0, timeout=60)
        tensor = InferInput(name="plot", shape=[len(PLOTS)], datatype="BYTES")
        tensor.set_data_from_numpy(np.array(PLOTS, dtype=object))
        try:
            return await client.infer(InferRequest(MODEL, [tensor], request_id="b-1"))
        finally:
            await client.close()

    response = asyncio.run(call())
    scores = {o.name: o for o in response.outputs}["scores"].as_numpy()
    np.testing.assert_allclose(scores, [expected[p] for p in PLOTS], atol=1e-4)


def test_concurrent_requests_share_model_calls_and_keep_their_own_answers(server, in_process):
    expected, genres = in_process
    labels = {"model": MODEL, "version": "5"}
    before = scrape(server[0])
    plots = PLOTS * 3  # 12 single-title requests at once
    with ThreadPoolExecutor(len(plots)) as pool:
        answers = list(pool.map(lambda p: v1_scores(server[0], p, genres), plots))
    after = scrape(server[0])

    for plot, scores in zip(plots, answers, strict=True):
        np.testing.assert_allclose(scores, expected[plot], atol=1e-4)
    calls = sample(after, "trending_model_batch_size_count", **labels) - sample(
        before, "trending_model_batch_size_count", **labels
    )
    titles = sample(after, "trending_model_batch_size_sum", **labels) - sample(
        before, "trending_model_batch_size_sum", **labels
    )
    assert titles == len(plots)
    assert 1 <= calls < len(plots)  # at least two requests met in one model call
