"""Offline/online correlation: labelled feedback through the router gives each version's online
micro-F1, compared with the offline test micro-F1 in its bundle manifest."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.router.app import RouterService, create_app
from serving.router.split import SplitFile, TrafficSplit, Upstream, write_split
from trending.genres import GenreVocabulary
from trending.modelling.bundle.inference import parse_v1_body, prediction_rows
from trending.modelling.evaluation import classification_metrics
from trending.monitoring.online_quality import (
    FeedbackCounts,
    compare_offline_online,
    counts_from_samples,
    offline_micro_f1,
)

MODEL, TOKEN = "genre-classifier", "t" * 32
AUTH = {"authorization": f"Bearer {TOKEN}"}
GENRES = ["Drama", "Horror", "Comedy"]


def test_online_micro_f1_is_the_offline_statistic_on_the_same_decisions():
    rng = np.random.default_rng(3)
    truth = rng.random((60, len(GENRES))) < 0.4
    predicted = truth ^ (rng.random(truth.shape) < 0.2)
    vocabulary = GenreVocabulary(GENRES)
    counts = FeedbackCounts.of(
        zip(vocabulary.decode(predicted), vocabulary.decode(truth), strict=True)
    )
    offline = classification_metrics(truth.astype(int), predicted.astype(int))["micro_f1"]
    assert counts.micro_f1 == pytest.approx(offline)


def test_a_version_far_below_its_offline_score_is_flagged_and_a_close_one_passes():
    offline = offline_micro_f1({"test": {"micro_f1": 0.64}, "validation": {"micro_f1": 0.7}})
    close = FeedbackCounts(tp=600, fp=350, fn=330)  # 0.638
    far = FeedbackCounts(tp=450, fp=500, fn=480)  # 0.479
    few = FeedbackCounts(tp=10, fp=30, fn=30)

    assert compare_offline_online(5, offline, close, margin=0.05).status == "pass"
    flagged = compare_offline_online(5, offline, far, margin=0.05)
    assert flagged.status == "fail" and flagged.gap == pytest.approx(0.64 - 900 / 1880, abs=1e-6)
    assert "offline no longer predicts online quality" in flagged.message
    assert compare_offline_online(5, offline, few, min_decisions=100).status == "insufficient"
    assert compare_offline_online(5, offline_micro_f1({}), close).status == "insufficient"


def test_the_sampling_allowance_shrinks_with_more_labels():
    offline = 0.64
    small = compare_offline_online(
        1, offline, FeedbackCounts(tp=28, fp=22, fn=22), min_decisions=10
    )
    large = compare_offline_online(1, offline, FeedbackCounts(tp=2800, fp=2200, fn=2200))
    assert (
        small.status == "pass" and large.status == "fail"
    )  # both 0.56: more evidence, less allowance
    assert small.allowed_gap > large.allowed_gap


def _horror_predictor(request: httpx.Request) -> httpx.Response:
    titles = parse_v1_body(json.loads(request.content))
    scores = np.tile([0.2, 0.9, 0.1], (len(titles), 1))
    return httpx.Response(
        200, json={"predictions": prediction_rows(titles, scores, scores > 0.5, GENRES)}
    )


def test_feedback_through_the_router_gives_the_canary_online_score_that_flags_it(tmp_path):
    split = tmp_path / "split.json"
    write_split(split, TrafficSplit(model=MODEL, stable=Upstream(version=7, url="http://s")))
    service = RouterService(
        SplitFile(split), TOKEN, transport=httpx.MockTransport(_horror_predictor)
    )
    with TestClient(create_app(service)) as client:
        instances = [{"title_id": f"t{i}", "plot": "A quiet family story."} for i in range(60)]
        assert client.post(f"/v1/models/{MODEL}:predict", json={"instances": instances}).is_success
        for i in range(60):  # the model says Horror; people say Drama, and Horror only for 10
            labels = ["Drama", "Horror"] if i < 10 else ["Drama"]
            body = {"title_id": f"t{i}", "genres": labels}
            assert client.post("/feedback", json=body, headers=AUTH).json()["counted"]
        samples = {
            (s.labels["version"], s.labels["outcome"]): s.value
            for family in text_string_to_metric_families(client.get("/metrics").text)
            for s in family.samples
            if s.name == "trending_feedback_genres_total"
        }
    online = counts_from_samples(samples)["7"]
    assert (online.tp, online.fp, online.fn) == (10, 50, 60)
    check = compare_offline_online(7, 0.62, online, margin=0.05)
    assert check.status == "fail" and check.online_micro_f1 == pytest.approx(20 / 130, abs=1e-6)
