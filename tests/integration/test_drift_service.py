"""The drift service over HTTP (in-process): CloudEvents in both modes, 4xx on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.drift.app import DriftService, create_app
from trending.data.synthetic import generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import DriftMonitor, fit_drift_detector, load_drift_detector

pytestmark = pytest.mark.integration
REQUEST = "org.kubeflow.serving.inference.request"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    reference = generate_titles(300, seed=1)
    genres = list(DEFAULT_GENRES)
    scores = np.array([[1.0 if g in gs else 0.0 for g in genres] for gs in reference["genres"]])
    bundle = tmp_path_factory.mktemp("bundle")
    fit_drift_detector(texts_of(reference), scores, bundle, genres=genres)
    detector = load_drift_detector(bundle)
    service = DriftService(
        DriftMonitor(lambda m, v: detector, window_size=100, min_window=10),
        model_name="genre-classifier",
        default_version=None,
        interval=3600,
    )
    with TestClient(create_app(service)) as c:
        c.service = service
        yield c


def _headers(**extra: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "t",
        "ce-type": REQUEST,
        "content-type": "application/json",
        **extra,
    }


def test_payload_logger_events_fill_the_window_of_their_version(client) -> None:
    body = json.dumps(
        {"instances": [{"plot": f"A detective chases a thief {i}"} for i in range(20)]}
    )
    answer = client.post(
        "/", headers=_headers(**{"ce-modelid": "genre-classifier:7"}), content=body
    )
    assert answer.status_code == 202 and answer.json()["version"] == "7", answer.text
    structured = {
        "specversion": "1.0",
        "id": "1",
        "source": "t",
        "modelversion": "7",
        "type": "org.kubeflow.serving.inference.response",
        "data": {"predictions": [{"genres": ["Crime"], "scores": {"Crime": 0.9}}] * 20},
    }
    answer = client.post(
        "/",
        headers={"content-type": "application/cloudevents+json"},
        content=json.dumps(structured),
    )
    assert answer.status_code == 202, answer.text
    client.service.score_once()
    metrics = client.get("/metrics").text
    assert 'trending_drift_window_size{model="genre-classifier",version="7"} 20.0' in metrics
    assert (
        'trending_drift_is_drift{detector="predictions",model="genre-classifier",version="7"}'
        in metrics
    )


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
        (_headers(**{"ce-type": "other"}), b"{}", "is not scored"),
        (_headers(), b'{"instances": ["x"]}', "no model version"),
        (_headers(**{"ce-modelversion": "1"}), b'{"inputs": []}', "V2 bodies"),
        (
            _headers(**{"ce-modelversion": "1"}),
            b'{"instances": [{"plot": ""}]}',
            "instances[0].plot",
        ),
        (
            _headers(
                **{"ce-modelversion": "1", "ce-type": "org.kubeflow.serving.inference.response"}
            ),
            b'{"predictions": [{"scores": {}}]}',
            "genres",
        ),
    ],
)
def test_bad_events_get_400_with_the_reason(client, headers, body, message) -> None:
    answer = client.post("/", headers=headers, content=body)
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_registry_loader_reuses_a_bundle_it_already_downloaded(trained_bundle, tmp_path) -> None:
    import shutil

    from serving.drift.app import registry_loader
    from trending.monitoring.drift import add_drift_detector
    from trending.registry import Registry

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    add_drift_detector(bundle, generate_titles(120, seed=4))
    registry = Registry.from_uri((tmp_path / "registry").as_uri(), "genre-classifier")
    version = registry.register_version(bundle, actor="test", reason="drift loader")

    load = registry_loader(registry.store.uri, tmp_path / "cache")
    first = load("genre-classifier", str(version))  # downloads
    again = load("genre-classifier", str(version))  # the service's first event: same folder
    assert first.genres == again.genres == list(DEFAULT_GENRES)
