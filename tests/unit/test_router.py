"""The router's evidence endpoints: only token holders post, hostile bodies get 400, repeats count once.

The router runs in-process (Starlette's TestClient); its upstream model server is faked at the
transport level, answering with the predictor's own V1 answer builder
(``trending.modelling.bundle.inference``), so the router sees what a real predictor sends.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.router.__main__ import main as router_main
from serving.router.app import RouterService, create_app
from serving.router.feedback import MAX_FEEDBACK_BYTES, BadFeedbackError, parse_feedback
from serving.router.split import SplitFile, TrafficSplit, Upstream, write_split
from trending.modelling.bundle.inference import (
    MAX_JSON_DEPTH,
    InvalidJSONError,
    parse_json_strictly,
    parse_v1_body,
    prediction_rows,
)

MODEL = "genre-classifier"
TOKEN = "t" * 32
AUTH = {"authorization": f"Bearer {TOKEN}"}
GENRES = ["Drama", "Horror"]


def fake_predictor(request: httpx.Request) -> httpx.Response:
    """A V1 model server that tags every title Horror."""
    titles = parse_v1_body(json.loads(request.content))
    scores = np.tile([0.2, 0.9], (len(titles), 1))
    return httpx.Response(
        200, json={"predictions": prediction_rows(titles, scores, scores > 0.5, GENRES)}
    )


@pytest.fixture
def split_path(tmp_path):
    path = tmp_path / "split.json"
    write_split(path, TrafficSplit(model=MODEL, stable=Upstream(version=1, url="http://stable")))
    return path


@pytest.fixture
def client(split_path):
    service = RouterService(
        SplitFile(split_path), TOKEN, transport=httpx.MockTransport(fake_predictor)
    )
    with TestClient(create_app(service), raise_server_exceptions=False) as test_client:
        yield test_client


def metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def refused(client: TestClient, endpoint: str, reason: str) -> float:
    return metric(client, "trending_router_refused_total", endpoint=endpoint, reason=reason)


def feedback_count(client: TestClient) -> float:
    return metric(client, "trending_feedback_jaccard_count", model=MODEL, version="1")


def predict(client: TestClient, *title_ids: str) -> None:
    instances = [{"title_id": t, "plot": "A haunted house."} for t in title_ids]
    response = client.post(f"/v1/models/{MODEL}:predict", json={"instances": instances})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": TOKEN}],
    ids=["none", "wrong", "no-scheme"],
)
def test_feedback_without_the_token_is_refused_and_counted(client, headers):
    predict(client, "tt1")
    response = client.post(
        "/feedback", json={"title_id": "tt1", "genres": ["Horror"]}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"error"}
    assert refused(client, "/feedback", "unauthenticated") == 1
    assert feedback_count(client) == 0


def test_forged_logger_events_are_refused_and_counted(client):
    headers = {"ce-id": "e1", "ce-type": "org.kubeflow.serving.inference.request"}
    response = client.post("/shadow/events", content=b"{}", headers=headers)
    assert response.status_code == 401
    assert refused(client, "/shadow/events", "unauthenticated") == 1
    accepted = client.post("/shadow/events", content=b"{}", headers={**headers, **AUTH})
    assert accepted.status_code == 202


def test_feedback_is_counted_once_per_title_and_client(client):
    predict(client, "tt1", "tt2")
    first = client.post("/feedback", json={"title_id": "tt1", "genres": ["Horror"]}, headers=AUTH)
    assert first.json() == {"version": 1, "jaccard": 1.0, "counted": True}
    for _ in range(5):  # the same client again: answered, not counted
        again = client.post(
            "/feedback", json={"title_id": "tt1", "genres": ["Drama"]}, headers=AUTH
        )
        assert again.status_code == 200 and again.json()["counted"] is False
    assert feedback_count(client) == 1
    assert refused(client, "/feedback", "duplicate") == 5
    other_client = {"title_id": "tt1", "genres": ["Drama"], "client_id": "user-7"}
    assert client.post("/feedback", json=other_client, headers=AUTH).json()["counted"] is True
    other_title = {"title_id": "tt2", "genres": ["Horror"]}
    assert client.post("/feedback", json=other_title, headers=AUTH).json()["counted"] is True
    assert feedback_count(client) == 3


def test_feedback_for_a_title_never_predicted_is_not_found(client):
    response = client.post(
        "/feedback", json={"title_id": "never", "genres": ["Horror"]}, headers=AUTH
    )
    assert response.status_code == 404
    assert refused(client, "/feedback", "unknown_title") == 1


JSON = {"content-type": "application/json"}
HOSTILE = {
    "nested 1,000 deep": (b"[" * 1000 + b"]" * 1000, JSON),
    "nested 100,000 deep": (b"[" * 100_000, JSON),
    "title_id nested 1,000 deep": (
        b'{"title_id": ' + b"[" * 1000 + b"]" * 1000 + b', "genres": []}',
        JSON,
    ),
    "NaN": (b'{"title_id": NaN, "genres": []}', JSON),
    "Infinity": (b'{"title_id": "tt1", "genres": [], "x": -Infinity}', JSON),
    "1e999": (b'{"title_id": 1e999, "genres": []}', JSON),
    "lone surrogate in title_id": (b'{"title_id": "\\ud800", "genres": []}', JSON),
    "lone surrogate in a genre": (b'{"title_id": "tt1", "genres": ["\\udfff"]}', JSON),
    "lone surrogate as a key": (b'{"\\ud800": 1, "title_id": "tt1", "genres": []}', JSON),
    "not UTF-8": (b'{"title_id": "\xff\xfe", "genres": []}', JSON),
    "text/plain": (b'{"title_id": "tt1", "genres": []}', {"content-type": "text/plain"}),
    "no content type": (b'{"title_id": "tt1", "genres": []}', {}),
    "form": (b"title_id=tt1", {"content-type": "application/x-www-form-urlencoded"}),
    "empty": (b"", JSON),
    "array": (b'["tt1"]', JSON),
    "title_id a number": (b'{"title_id": 7, "genres": []}', JSON),
    "genres a string": (b'{"title_id": "tt1", "genres": "Horror"}', JSON),
    "genres missing": (b'{"title_id": "tt1"}', JSON),
    "unknown field": (b'{"title_id": "tt1", "genres": [], "admin": true}', JSON),
    "too large": (b'{"title_id": "' + b"a" * MAX_FEEDBACK_BYTES + b'", "genres": []}', JSON),
}


@pytest.mark.parametrize("body,headers", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_feedback_bodies_get_400_with_an_error_and_no_exception_text(client, body, headers):
    predict(client, "tt1")
    response = client.post("/feedback", content=body, headers={**headers, **AUTH})
    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"error"}
    assert not any(word in answer["error"] for word in ("Error", "Traceback", "line ", "pydantic"))
    assert refused(client, "/feedback", "invalid") == 1
    assert feedback_count(client) == 0


def test_feedback_is_read_by_the_same_strict_parser_as_inference_requests():
    # 33 levels is valid JSON for Python's json module; the serving edge's parser refuses it.
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    body = b'{"title_id": "tt1", "genres": ["Drama"], "client_id": ' + deep + b"}"
    with pytest.raises(InvalidJSONError, match=f"more than {MAX_JSON_DEPTH} levels"):
        parse_json_strictly(body)
    with pytest.raises(BadFeedbackError, match=f"at most {MAX_JSON_DEPTH} levels deep"):
        parse_feedback(body, "application/json")


def test_a_broken_split_file_keeps_the_last_valid_split(client, split_path):
    split_path.write_text("{not json")
    assert client.get("/v2/health/ready").json()["stable"] == 1
    predict(client, "tt1")


def test_unknown_routes_answer_an_error_body(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_the_router_will_not_start_without_a_token(split_path, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["router", "--split_file", str(split_path)])
    with pytest.raises(SystemExit, match="give --token_file"):
        router_main()
    short = tmp_path / "token"
    short.write_text("short")
    monkeypatch.setattr(
        "sys.argv", ["router", "--split_file", str(split_path), "--token_file", str(short)]
    )
    with pytest.raises(SystemExit, match="shorter than 16 characters"):
        router_main()
