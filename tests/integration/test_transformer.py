"""The Feast transformer in front of the predictor: ask by title id, features from a real
Feast online store (SQLite, built in a temp folder), genres from the real predictor.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cli.processes import flags, running_service
from trending.data.ingest import ingest_frame, publish_features
from trending.data.synthetic import generate_titles

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"


@pytest.fixture(scope="module")
def feast_titles(tmp_path_factory):
    from trending.settings import Settings

    settings = Settings(
        home=tmp_path_factory.mktemp("home"),
        feature_repo=Path(__file__).resolve().parents[2] / "feature_repo",
    )
    titles = generate_titles(30, seed=5)
    snapshot = ingest_frame(titles, settings, source="synthetic").manifest
    publish_features(settings, snapshot.snapshot_id)
    return settings, titles


@pytest.fixture(scope="module")
def services(trained_bundle, feast_titles, tmp_path_factory):
    settings, _ = feast_titles
    logs = tmp_path_factory.mktemp("logs")
    ready = f"/v2/models/{MODEL}/ready"
    predictor_args = flags(
        model_name=MODEL,
        bundle_dir=trained_bundle,
        http_port=0,
        enable_grpc="false",
        model_version=5,
    )
    with running_service(
        "serving.predictor", predictor_args, logs / "p.log", ready_path=ready
    ) as predictor:
        transformer_args = flags(
            model_name=MODEL,
            predictor_host=predictor.address,
            feature_repo=settings.feature_repo,
            feature_store_dir=settings.feature_store_dir,
            http_port=0,
            max_instances=3,
        )
        with running_service(
            "serving.transformer", transformer_args, logs / "t.log", ready_path=ready
        ) as transformer:
            yield transformer.url, predictor.url


def test_ask_by_title_id_returns_the_predictors_answer_for_the_stored_plot(services, feast_titles):
    t_url, p_url = services
    _, titles = feast_titles
    rows = titles.head(2).to_dict("records")
    ids = [r["title_id"] for r in rows]
    response = httpx.post(
        f"{t_url}/v1/models/{MODEL}:predict",
        json={"instances": [{"title_id": ids[0]}, ids[1]]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["title_id"] for p in predictions] == ids
    plots = [{k: r[k] for k in ("title_id", "plot", "reviews")} for r in rows]
    direct = httpx.post(
        f"{p_url}/v1/models/{MODEL}:predict",
        json={"instances": [{**r, "reviews": list(r["reviews"])} for r in plots]},
    ).json()["predictions"]
    assert predictions == direct


def test_unknown_title_id_is_404_naming_the_id(services, feast_titles):
    _, titles = feast_titles
    known = titles["title_id"].iloc[0]
    response = httpx.post(
        f"{services[0]}/v1/models/{MODEL}:predict",
        json={"instances": [{"title_id": known}, {"title_id": "synthetic:nope"}]},
        timeout=30,
    )
    assert response.status_code == 404
    assert "unknown title_id 'synthetic:nope'" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"plot": "x"}]}, "instances[0].title_id is required"),
        ({"instances": [{"title_id": ""}]}, "title_id must not be empty"),
        ({"instances": ["a", "b", "c", "d"]}, "limit is 3"),
        ({"ids": ["a"]}, '{"instances": [{"title_id"'),
    ],
)
def test_bad_transformer_requests_are_400(services, body, message):
    response = httpx.post(f"{services[0]}/v1/models/{MODEL}:predict", json=body, timeout=30)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_transformer_counts_requests_under_its_own_model_label(services, feast_titles):
    from prometheus_client.parser import text_string_to_metric_families

    url = f"{services[0]}/v1/models/{MODEL}:predict"
    known = feast_titles[1]["title_id"].iloc[3]
    assert httpx.post(url, json={"instances": [known]}, timeout=30).status_code == 200
    assert httpx.post(url, json={"instances": ["synthetic:nope"]}, timeout=30).status_code == 404
    text = httpx.get(f"{services[0]}/metrics").text
    counts = {
        (s.labels["model"], s.labels["code"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "trending_requests"
        for s in family.samples
        if s.name == "trending_requests_total"
    }
    assert counts[(f"{MODEL}-transformer", "404")] >= 1
    assert counts[(f"{MODEL}-transformer", "200")] >= 1
    assert all(model == f"{MODEL}-transformer" for model, _ in counts)
