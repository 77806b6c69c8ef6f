"""Only the predictors move the drift gauges: events need the shared bearer token.

The drift service is configured with a token; events forged without it (or with a wrong one)
are refused with 401, leave the window untouched and are counted in
``trending_drift_events_total{outcome="unauthorized"}``. The predictors' own payload logger,
given the token, is accepted: its events reach the service through the service's app.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.drift.app import DriftService, create_app
from trending.data.synthetic import generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import DriftMonitor, fit_drift_detector, load_drift_detector
from trending.monitoring.payload_log import PayloadLogger, PayloadLogTarget

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"
TOKEN = "0123456789abcdef0123456789abcdef"
REQUEST = "org.kubeflow.serving.inference.request"


@pytest.fixture
def client(tmp_path):
    reference = generate_titles(200, seed=1)
    genres = list(DEFAULT_GENRES)
    scores = np.array([[1.0 if g in gs else 0.0 for g in genres] for gs in reference["genres"]])
    fit_drift_detector(texts_of(reference), scores, tmp_path, genres=genres)
    detector = load_drift_detector(tmp_path)
    service = DriftService(
        DriftMonitor(lambda m, v: detector, window_size=100, min_window=10),
        model_name=MODEL,
        default_version=None,
        interval=3600,
        token=TOKEN,
    )
    with TestClient(create_app(service)) as c:
        c.service = service
        yield c


def event_headers(**extra: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": "forged-1",
        "ce-source": "somewhere",
        "ce-type": REQUEST,
        "ce-modelid": f"{MODEL}:7",
        "content-type": "application/json",
        **extra,
    }


def unauthorized(client) -> float:
    value = client.service.metrics.registry.get_sample_value(
        "trending_drift_events_total", {"type": "unknown", "outcome": "unauthorized"}
    )
    return value or 0.0


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer"],
)
def test_forged_events_are_refused_and_counted(client, authorization):
    body = json.dumps({"instances": [{"plot": f"A forged plot {i}"} for i in range(50)]})
    headers = event_headers()
    if authorization is not None:
        headers["authorization"] = authorization
    for _ in range(3):
        answer = client.post("/", headers=headers, content=body)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in answer.json()["error"]
    assert unauthorized(client) == 3
    assert client.service.monitor.sizes() == {}  # nothing reached the window


def test_events_with_the_token_are_accepted_and_not_counted_as_forged(client):
    body = json.dumps({"instances": [{"plot": "A detective chases a thief."}]})
    headers = event_headers(authorization=f"Bearer {TOKEN}")
    answer = client.post("/", headers=headers, content=body)
    assert answer.status_code == 202, answer.text
    assert unauthorized(client) == 0
    assert client.service.monitor.sizes() == {(MODEL, "7"): 1}


def test_the_payload_logger_with_the_token_feeds_the_service(client):
    """The predictors' logger, pointed at the service's app, with and without the token."""
    received = []

    def into_the_app(request: httpx.Request) -> httpx.Response:
        answer = client.post("/", headers=dict(request.headers), content=request.content)
        received.append(answer.status_code)
        return httpx.Response(answer.status_code, content=answer.content)

    target = PayloadLogTarget("http://drift.invalid/", "http://predictor:8080", MODEL)
    for token in (TOKEN, None):
        logger = PayloadLogger(target, transport=httpx.MockTransport(into_the_app), token=token)
        logger.start()
        logger.log_request("e-1", {"instances": [{"plot": "A heist."}]}, model_id=f"{MODEL}:7")
        logger.close()
    assert received == [202, 401]
    assert unauthorized(client) == 1
    assert client.service.monitor.sizes() == {(MODEL, "7"): 1}


def test_a_short_token_is_refused_at_start():
    with pytest.raises(ValueError, match="shorter than 16 characters"):
        DriftService(
            DriftMonitor(lambda m, v: None), model_name=MODEL, default_version=None, token="short"
        )
