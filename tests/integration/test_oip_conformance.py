"""The predictor conforms to the Open Inference Protocol REST spec: schemathesis finds nothing.

Schemathesis generates requests from KServe's own OpenAPI document of the protocol
(tests/fixtures/oip_rest_predict_v2.yaml) and checks every answer against it: no server error,
status codes and content types the spec documents, response bodies that validate (no
``model_version: null``, no ``parameters: null``). Two runs: with the path parameters pinned to
the model and version the server holds (every operation answers, bodies are fuzzed), and with
any name and version (what the server does not hold is a 4xx, never a 5xx).
"""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from cli.processes import flags, running_service

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"
VERSION = "3"
SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "oip_rest_predict_v2.yaml"


@pytest.fixture(scope="module")
def predictor(trained_bundle, tmp_path_factory):
    args = flags(
        model_name=MODEL,
        bundle_dir=trained_bundle,
        model_version=VERSION,
        http_port=0,
        enable_grpc="false",
        max_instances=8,
    )
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", args, log, ready_path=ready) as predictor:
        yield predictor.url


def run_cases(strategy, base_url: str, checks: list, failures: list[str], max_examples: int):
    """Send ``max_examples`` cases drawn from ``strategy``; add each failure to ``failures``."""

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case):
        try:
            case.call_and_validate(base_url=base_url, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # one per failed check, schemathesis' text
            failures.append(f"{case.method} {case.formatted_path}: {exc}")

    check()


def load_spec(pinned: dict[str, str] | None = None) -> dict:
    """The spec with its ``${NAME}`` path templates read as ``{NAME}``, optionally pinned."""
    raw = yaml.safe_load(SPEC.read_text())
    paths = {}
    for path, item in raw["paths"].items():
        item = copy.deepcopy(item)
        for parameter in item.get("parameters", []):
            if pinned is not None:
                parameter["schema"] = {"type": "string", "enum": [pinned[parameter["name"]]]}
        paths[path.replace("${", "{")] = item
    raw["paths"] = paths
    return raw


def run_schemathesis(
    raw: dict, base_url: str, checks: list, max_examples: int, negative_checks: list | None = None
) -> list[str]:
    """Every operation of ``raw``: positive cases under ``checks``; for POST also negative
    cases (schema-invalid bodies and path parameters) under ``negative_checks``. The failures.
    """
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [(GenerationMode.POSITIVE, checks)]
        if operation.method.upper() == "POST" and negative_checks:
            modes.append((GenerationMode.NEGATIVE, negative_checks))
        for mode, mode_checks in modes:
            strategy = operation.as_strategy(generation_mode=mode)
            run_cases(strategy, base_url, mode_checks, failures, max_examples)
            calls += 1
    assert calls > 0
    return failures


def test_schemathesis_finds_no_failure_on_the_served_model_and_version(predictor):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    raw = load_spec({"MODEL_NAME": MODEL, "MODEL_VERSION": VERSION})
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    # Negative cases may break the pinned path parameters too: a 404 the spec does not list.
    negative = [not_a_server_error, content_type_conformance, response_schema_conformance]
    failures = run_schemathesis(raw, predictor, checks, max_examples=60, negative_checks=negative)
    assert failures == [], "\n".join(failures[:10])


def test_schemathesis_finds_no_server_error_on_any_name_or_version(predictor):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    # The spec documents no 404: only server errors and the bodies it does document count.
    checks = [not_a_server_error, response_schema_conformance]
    failures = run_schemathesis(
        load_spec(), predictor, checks, max_examples=40, negative_checks=checks
    )
    assert failures == [], "\n".join(failures[:10])


def test_versioned_paths_serve_the_held_version_and_404_another(predictor):
    body = {"inputs": [{"name": "plot", "shape": [1], "datatype": "BYTES", "data": ["A heist."]}]}
    base = f"{predictor}/v2/models/{MODEL}/versions"
    answer = httpx.post(f"{base}/{VERSION}/infer", json=body)
    assert answer.status_code == 200 and answer.json()["model_version"] == VERSION
    assert httpx.get(f"{base}/{VERSION}/ready").json() == {"name": MODEL, "ready": True}
    assert httpx.get(f"{base}/{VERSION}").json()["versions"] == [VERSION]
    for other in ("4", "latest"):
        for answer in (
            httpx.post(f"{base}/{other}/infer", json=body),
            httpx.get(f"{base}/{other}/ready"),
            httpx.get(f"{base}/{other}"),
        ):
            assert answer.status_code == 404
            assert f"holds version {VERSION}" in answer.json()["error"]


def test_model_metadata_describes_the_tensors_and_the_genres(predictor):
    from trending.genres import DEFAULT_GENRES

    metadata = httpx.get(f"{predictor}/v2/models/{MODEL}").json()
    assert metadata["name"] == MODEL
    assert metadata["versions"] == [VERSION]
    assert metadata["platform"] == "trending-xgboost"
    [plot] = metadata["inputs"]
    assert (plot["name"], plot["datatype"], plot["shape"]) == ("plot", "BYTES", [-1])
    outputs = {o["name"]: o for o in metadata["outputs"]}
    assert (outputs["genres"]["datatype"], outputs["genres"]["shape"]) == ("BYTES", [-1])
    scores = outputs["scores"]
    assert (scores["datatype"], scores["shape"]) == ("FP32", [-1, 19])
    assert scores["parameters"]["genre_order"].split(",") == list(DEFAULT_GENRES)


def test_infer_responses_carry_no_nulls(predictor):
    body = {"inputs": [{"name": "plot", "shape": [1], "datatype": "BYTES", "data": ["A heist."]}]}
    answer = httpx.post(f"{predictor}/v2/models/{MODEL}/infer", json=body).json()

    def nulls(value, where="$"):
        if value is None:
            yield where
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from nulls(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from nulls(item, f"{where}[{i}]")

    assert list(nulls(answer)) == []
    assert answer["model_version"] == VERSION
