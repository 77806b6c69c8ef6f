"""The KServe predictor over HTTP: V1 and V2 answers, and 4xx (never 5xx) for bad requests."""

from __future__ import annotations

import httpx
import pytest

from trending.processes import free_port, running_service

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"


@pytest.fixture(scope="module")
def server(trained_bundle, tmp_path_factory):
    port = free_port()
    args = [
        "--model_name", MODEL, "--bundle_dir", str(trained_bundle), "--max_instances", "4",
        "--http_port", str(port), "--grpc_port", str(free_port()),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    with running_service("serving.predictor", args, f"{url}/v2/models/{MODEL}/ready", log):
        yield url


def test_v1_accepts_strings_and_objects(server):
    response = httpx.post(
        f"{server}/v1/models/{MODEL}:predict",
        json={
            "instances": [
                "A haunted house, a possessed demon and a night of terror.",
                {"title_id": "t:1", "plot": "A detective and the police chase a gangster after a heist and a murder.", "reviews": ["Tense."]},
            ]
        },
    )
    assert response.status_code == 200
    first, second = response.json()["predictions"]
    assert "Horror" in first["genres"] and len(first["scores"]) == 19
    assert second["title_id"] == "t:1"
    assert max(second["scores"], key=second["scores"].get) == "Crime"


def test_v2_infer_returns_genres_and_score_matrix(server):
    body = {"inputs": [{"name": "plot", "shape": [2], "datatype": "BYTES",
                        "data": ["A haunted house, a possessed demon, a curse and a night of terror.", "A cowboy."]}]}  # fmt: skip
    response = httpx.post(f"{server}/v2/models/{MODEL}/infer", json=body)
    assert response.status_code == 200
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["scores"]["shape"] == [2, 19]
    assert "Horror" in outputs["genres"]["data"][0].split(",")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"reviews": ["no plot"]}]}, "instances[0].plot is required"),
        ({"instances": [{"plot": 42}]}, "instances[0].plot must be a string"),
        ({"instances": [{"plot": "   "}]}, "instances[0].plot must not be empty"),
        ({"instances": []}, "instances is empty"),
        ({"instances": ["a", "b", "c", "d", "e"]}, "limit is 4"),
        ({"instances": [{"plot": "x", "rating": 5}]}, "rating is not a known field"),
        ({"rows": ["x"]}, 'body must be a JSON object {"instances"'),
    ],
)
def test_v1_bad_requests_get_400_with_a_clear_message(server, body, message):
    response = httpx.post(f"{server}/v1/models/{MODEL}:predict", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_invalid_json_is_a_4xx(server):
    response = httpx.post(
        f"{server}/v1/models/{MODEL}:predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500


def test_v2_wrong_datatype_is_a_400(server):
    body = {"inputs": [{"name": "plot", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    response = httpx.post(f"{server}/v2/models/{MODEL}/infer", json=body)
    assert response.status_code == 400
    assert "BYTES" in response.json()["error"]
