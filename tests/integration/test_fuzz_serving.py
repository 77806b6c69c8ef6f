"""Nothing a client sends produces a 500: hypothesis throws arbitrary bodies at V1 and V2 REST.

The app is KServe's real REST stack (endpoints, dataplane, exception handlers) plus the
predictor's guard, served in-process through Starlette's TestClient (fast enough to fuzz).
"""

from __future__ import annotations

import sys
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
v1_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"instances": st.lists(st.one_of(st.text(max_size=40), json_values), max_size=6)}
    ),
    st.fixed_dictionaries(
        {
            "instances": st.lists(
                st.fixed_dictionaries(
                    {"plot": json_values},
                    optional={"reviews": json_values, "title_id": json_values},
                ),
                max_size=3,
            )
        }
    ),
)
v2_tensors = st.fixed_dictionaries(
    {
        "name": st.text(max_size=5),
        "shape": st.one_of(st.lists(st.integers(-2, 5), max_size=3), json_values),
        "datatype": st.sampled_from(["BYTES", "FP32", "INT64", "BOOL", "x"]),
        "data": st.one_of(
            st.lists(
                st.one_of(
                    st.text(max_size=20),
                    st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False),
                ),
                max_size=5,
            ),
            json_values,
        ),
    }
)
v2_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"inputs": st.lists(v2_tensors, max_size=2)}, optional={"id": json_values}
    ),
)
raw_bytes = st.binary(max_size=300)


@pytest.fixture(scope="module")
def client(trained_bundle):
    with mock.patch.object(sys, "argv", ["serving.predictor"]):  # kserve parses argv at import
        import kserve.model_server  # noqa: F401
    from fastapi import FastAPI
    from fastapi.responses import ORJSONResponse
    from fastapi.testclient import TestClient
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer
    from prometheus_client import CollectorRegistry

    from serving.predictor import http
    from serving.predictor.model import GenreClassifierModel
    from trending.metrics import ServingMetrics

    model = GenreClassifierModel(MODEL, bundle_dir=trained_bundle, max_instances=8)
    model.load()
    model.metrics = ServingMetrics(MODEL, "fuzz", model.predictor.genres, CollectorRegistry())
    repository = ModelRepository()
    repository.update(model)
    server = RESTServer(
        "unused:app", DataPlane(repository), ModelRepositoryExtension(repository), 0
    )
    app = FastAPI(default_response_class=ORJSONResponse)
    server._register_endpoints(app)  # the same wiring as RESTServer.create_application
    server._add_exception_handlers(app)
    http.install(app, max_payload_bytes=2048, metrics=model.metrics)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_client_error_or_ok(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()  # a message, not an empty body


@FUZZ
@given(body=v1_bodies)
def test_v1_json_bodies_never_500(client, body):
    assert_client_error_or_ok(client.post(f"/v1/models/{MODEL}:predict", json=body))


@FUZZ
@given(body=v2_bodies)
def test_v2_json_bodies_never_500(client, body):
    assert_client_error_or_ok(client.post(f"/v2/models/{MODEL}/infer", json=body))


@FUZZ
@given(raw=raw_bytes, v2=st.booleans())
def test_raw_bytes_never_500(client, raw, v2):
    path = f"/v2/models/{MODEL}/infer" if v2 else f"/v1/models/{MODEL}:predict"
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert_client_error_or_ok(response)


def test_the_fuzzed_app_does_answer_good_requests(client):
    response = client.post(f"/v1/models/{MODEL}:predict", json={"instances": ["A haunted house."]})
    assert response.status_code == 200
    body = {"inputs": [{"name": "p", "shape": [1], "datatype": "BYTES", "data": ["A heist."]}]}
    assert client.post(f"/v2/models/{MODEL}/infer", json=body).status_code == 200
