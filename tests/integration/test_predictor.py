"""The KServe predictor over HTTP: V1 and V2 answers (raw and through KServe's own REST client),
4xx (never 5xx) for bad requests, Prometheus metrics after known traffic, CloudEvents payload log.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from fixtures.metrics import sample, scrape

from cli.processes import flags, running_service

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"
VERSION = "7"
MAX_PAYLOAD = 4096
HORROR = "A haunted house, a possessed demon, a curse and a night of terror."
CRIME = "A detective and the police chase a gangster after a heist and a murder."


class _Sink(BaseHTTPRequestHandler):
    events: list[tuple[dict[str, str], bytes]]
    received: threading.Condition

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.received:
            self.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.received.notify_all()
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def sink():
    handler = type("Sink", (_Sink,), {"events": [], "received": threading.Condition()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/events"
    server.shutdown()


def wait_for_events(handler, predicate, timeout=20.0):
    with handler.received:
        handler.received.wait_for(lambda: predicate(handler.events), timeout)
        return list(handler.events)


@pytest.fixture(scope="module")
def server(trained_bundle, tmp_path_factory, sink):
    args = flags(
        model_name=MODEL,
        storage_uri=trained_bundle.as_uri(),
        max_instances=4,
        model_version=VERSION,
        max_payload_bytes=MAX_PAYLOAD,
        payload_log_url=sink[1],
        inference_service_name="genres-isvc",
        endpoint="canary",
        http_port=0,
        grpc_port=0,
    )
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", args, log, ready_path=ready) as predictor:
        yield predictor.url, log


def test_ready_log_line_names_version_and_device(server):
    text = server[1].read_text()
    assert f"ready: serving {MODEL} version {VERSION} (xgboost) on CPU" in text


def test_no_log_line_per_request_by_default(server):
    for _ in range(3):
        ok = httpx.post(f"{server[0]}/v1/models/{MODEL}:predict", json={"instances": [HORROR]})
        assert ok.status_code == 200
    text = server[1].read_text()
    assert ":predict HTTP/1.1" not in text  # uvicorn's access line
    assert "kserve.trace" not in text  # KServe's per-request timing lines


def test_v1_accepts_strings_and_objects(server):
    response = httpx.post(
        f"{server[0]}/v1/models/{MODEL}:predict",
        json={"instances": [HORROR, {"title_id": "t:1", "plot": CRIME, "reviews": ["Tense."]}]},
    )
    assert response.status_code == 200
    first, second = response.json()["predictions"]
    assert "Horror" in first["genres"] and len(first["scores"]) == 19
    assert second["title_id"] == "t:1"
    assert max(second["scores"], key=second["scores"].get) == "Crime"


def test_v2_infer_returns_genres_and_score_matrix(server):
    tensor = {"name": "plot", "shape": [2], "datatype": "BYTES", "data": [HORROR, "A cowboy."]}
    body = {"inputs": [tensor]}
    response = httpx.post(f"{server[0]}/v2/models/{MODEL}/infer", json=body)
    assert response.status_code == 200
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["scores"]["shape"] == [2, 19]
    assert "Horror" in outputs["genres"]["data"][0].split(",")


def test_kserve_rest_client_v1_and_v2(server):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def call():
        v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
        v2 = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
        tensor = InferInput(name="plot", shape=[1], datatype="BYTES")
        tensor.set_data_from_numpy(np.array([CRIME], dtype=object), binary_data=False)
        try:
            out1 = await v1.infer(server[0], {"instances": [HORROR]}, model_name=MODEL)
            out2 = await v2.infer(
                server[0], InferRequest(MODEL, [tensor], request_id="req-9"), model_name=MODEL
            )
        finally:
            await v1.close()
            await v2.close()
        return out1, out2

    out1, out2 = asyncio.run(call())
    assert "Horror" in out1["predictions"][0]["genres"]
    assert out2.id == "req-9"
    outputs = {o.name: o for o in out2.outputs}
    scores = outputs["scores"].as_numpy()
    assert scores.shape == (1, 19)
    genre_order = out2.parameters["genre_order"].split(",")
    assert genre_order[int(scores[0].argmax())] == "Crime"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"reviews": ["no plot"]}]}, "instances[0].plot is required"),
        ({"instances": [{"plot": 42}]}, "instances[0].plot must be a string"),
        ({"instances": [{"plot": "   "}]}, "instances[0].plot must not be empty"),
        ({"instances": [{"plot": "x", "reviews": "good"}]}, "instances[0].reviews must be a list"),
        ({"instances": []}, "instances is empty"),
        ({"instances": ["a", "b", "c", "d", "e"]}, "limit is 4"),
        ({"instances": [{"plot": "x", "rating": 5}]}, "rating is not a known field"),
        ({"instances": [7]}, "instances[0] is int"),
        ({"rows": ["x"]}, 'body must be a JSON object {"instances"'),
    ],
)
def test_v1_bad_requests_get_400_with_a_clear_message(server, body, message):
    response = httpx.post(f"{server[0]}/v1/models/{MODEL}:predict", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize("path", [f"/v1/models/{MODEL}:predict", f"/v2/models/{MODEL}/infer"])
@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"instances": ["caf\xe9"]}', 400, "not valid UTF-8"),
        (json.dumps({"instances": ["x" * MAX_PAYLOAD]}).encode(), 413, f"{MAX_PAYLOAD} bytes"),
    ],
)
def test_undecodable_or_oversized_bodies_are_4xx(server, path, content, status, message):
    response = httpx.post(
        f"{server[0]}{path}", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert message in response.json()["error"]


def test_chunked_oversized_body_is_413(server):
    def chunks():
        for _ in range(10):
            yield b" " * 1024  # JSON whitespace, no Content-Length

    response = httpx.post(f"{server[0]}/v1/models/{MODEL}:predict", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"name": "plot", "shape": [1], "datatype": "FP32", "data": [1.0]}], "BYTES"),
        ([{"name": "plot", "shape": [3], "datatype": "BYTES", "data": ["a"]}], "use shape [1]"),
        ([{"name": "plot", "shape": [1], "datatype": "BYTES", "data": [" "]}], "must not be empty"),
        ([], "0 input tensors"),
    ],
)
def test_v2_bad_tensors_are_400(server, inputs, message):
    response = httpx.post(f"{server[0]}/v2/models/{MODEL}/infer", json={"inputs": inputs})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_metrics_count_known_traffic(server):
    url = server[0]
    labels = {"model": MODEL, "version": VERSION}
    before = scrape(url)
    for _ in range(3):
        ok = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [HORROR, CRIME]})
        assert ok.status_code == 200
    body = {"inputs": [{"name": "plot", "shape": [1], "datatype": "BYTES", "data": [HORROR]}]}
    assert httpx.post(f"{url}/v2/models/{MODEL}/infer", json=body).status_code == 200
    assert httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": []}).status_code == 400
    assert httpx.post(f"{url}/v1/models/{MODEL}:predict", content=b"{").status_code == 400
    after = scrape(url)

    def delta(name, **extra):
        return sample(after, name, **labels, **extra) - sample(before, name, **labels, **extra)

    assert delta("trending_requests_total", protocol="v1", code="200") == 3
    assert delta("trending_requests_total", protocol="v2", code="200") == 1
    assert delta("trending_requests_total", protocol="v1", code="400") == 2
    assert delta("trending_request_duration_seconds_count") == 6
    assert delta("trending_errors_total", kind="invalid_input") == 1
    assert delta("trending_errors_total", kind="invalid_json") == 1
    assert delta("trending_instances_per_request_count") == 4
    assert delta("trending_instances_per_request_sum") == 7
    assert delta("trending_model_batch_size_count") == 4  # batching is off for XGBoost
    assert delta("trending_model_batch_size_sum") == 7
    assert delta("trending_input_chars_sum") == 4 * len(HORROR) + 3 * len(CRIME)
    assert delta("trending_prediction_score_count", genre="Horror") == 7
    assert delta("trending_predictions_total", genre="Horror") >= 4
    assert delta("trending_predictions_total", genre="Crime") >= 3
    assert ("trending_payload_log_dropped_total", tuple(sorted(labels.items()))) in after


def test_payload_log_sends_request_and_response_cloudevents(server, sink):
    handler, _ = sink
    response = httpx.post(
        f"{server[0]}/v1/models/{MODEL}:predict",
        json={"instances": [{"title_id": "t:ce", "plot": CRIME}]},
        headers={"x-request-id": "ce-test-1"},
    )
    assert response.status_code == 200
    events = wait_for_events(
        handler, lambda ev: sum(h.get("ce-id") == "ce-test-1" for h, _ in ev) >= 2
    )
    mine = {h["ce-type"]: (h, json.loads(b)) for h, b in events if h.get("ce-id") == "ce-test-1"}
    request_headers, request_data = mine["org.kubeflow.serving.inference.request"]
    response_headers, response_data = mine["org.kubeflow.serving.inference.response"]
    assert request_headers["ce-inferenceservicename"] == "genres-isvc"
    assert request_headers["ce-endpoint"] == "canary"
    assert request_headers["ce-specversion"] == "1.0"
    assert request_headers["ce-source"].startswith("http://")
    assert request_headers["content-type"] == "application/json"
    assert request_data == {"instances": [{"title_id": "t:ce", "plot": CRIME, "reviews": []}]}
    assert response_data == response.json()
    assert response_headers["ce-modelid"] == f"{MODEL}:{VERSION}"
