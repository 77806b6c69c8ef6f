"""Labelled feedback on the cluster: the drift service's /feedback and the PerformanceDegraded retrain.

The drift service remembers what each version predicted for a title from the predictors' response
events; a client posts the true genres with its own bearer token; each (title, client) counts once
and the version gets a rolling micro-F1. The service's own /metrics, scraped, feeds a promtool test
of the repository's PerformanceDegraded rule (no metric name typed here), and the alert it fires,
as Alertmanager would send it, is what the retrain trigger turns into a run with reason
``performance``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.drift.app import RESPONSE_TYPE, DriftService, create_app
from serving.trigger.app import WebhookPayload, retrain_requests
from trending.data.synthetic import generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import DriftMonitor, fit_drift_detector, load_drift_detector
from trending.monitoring.feedback import MAX_FEEDBACK_BYTES, FeedbackLedger, RollingMicroF1

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "rules" / "trending.rules.yml"
MODEL = "genre-classifier"
FEEDBACK_TOKEN = "feedback-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {FEEDBACK_TOKEN}"}


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    out = tmp_path_factory.mktemp("detector")
    reference = generate_titles(60, seed=1)
    genres = list(DEFAULT_GENRES)
    scores = np.array([[1.0 if g in gs else 0.0 for g in genres] for gs in reference["genres"]])
    fit_drift_detector(texts_of(reference), scores, out, genres=genres, n_components=4)
    return load_drift_detector(out)


def _client(detector, *, feedback_token: str | None = FEEDBACK_TOKEN, window: int = 500):
    service = DriftService(
        DriftMonitor(lambda m, v: detector, window_size=100, min_window=10),
        model_name=MODEL,
        default_version=None,
        interval=3600,
        feedback_token=feedback_token,
        feedback_window=window,
    )
    return TestClient(create_app(service))


def _answers(client: TestClient, version: int, predicted: dict[str, list[str]]) -> None:
    """The response event the predictor's payload logger sends for ``predicted`` titles."""
    event = {
        "specversion": "1.0",
        "id": f"evt-{version}",
        "source": "predictor",
        "type": RESPONSE_TYPE,
        "modelversion": str(version),
        "datacontenttype": "application/json",
        "data": {
            "predictions": [
                {"title_id": t, "genres": g, "scores": {}} for t, g in predicted.items()
            ]
        },
    }
    headers = {"content-type": "application/cloudevents+json"}
    answer = client.post("/", headers=headers, content=json.dumps(event))
    assert answer.status_code == 202, answer.text


def _post(client: TestClient, body: object, headers: dict[str, str] = AUTH, **kw):
    return client.post("/feedback", json=body, headers=headers, **kw)


def _gauge(client: TestClient, name: str, version: str) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("version") == version:
                return sample.value
    return None


def test_feedback_scores_the_version_that_answered_once_per_title_and_client(detector):
    with _client(detector) as client:
        # v3 predicted Drama for every title; half are Drama+Comedy, half Action.
        _answers(client, 3, {f"tmdb:{i}": ["Drama"] for i in range(20)})
        _answers(client, 4, {"tmdb:99": ["Action"]})
        for i in range(20):
            labels = ["Drama", "Comedy"] if i % 2 else ["Action"]
            answer = _post(client, {"title_id": f"tmdb:{i}", "genres": labels})
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 3 and answer.json()["counted"] is True
        # tp 10, fp 10, fn 20: micro-F1 = 2*10 / (2*10 + 10 + 20) = 0.4
        assert _gauge(client, "trending_feedback_micro_f1", "3") == pytest.approx(0.4)
        assert _gauge(client, "trending_feedback_window_titles", "3") == 20
        # The same title from the same client again, and a repeat naming the client: not counted.
        again = _post(client, {"title_id": "tmdb:0", "genres": ["Drama"]})
        assert again.status_code == 200 and again.json()["counted"] is False
        assert _gauge(client, "trending_feedback_micro_f1", "3") == pytest.approx(0.4)
        other = _post(client, {"title_id": "tmdb:0", "genres": ["Drama"], "client_id": "app-2"})
        assert other.json()["counted"] is True
        assert _gauge(client, "trending_feedback_window_titles", "3") == 21
        # Version 4 is scored on its own.
        assert _post(client, {"title_id": "tmdb:99", "genres": ["Action"]}).json()["micro_f1"] == 1
        assert _gauge(client, "trending_feedback_micro_f1", "4") == 1.0


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ({"title_id": "tmdb:1", "genres": ["Drama"]}, {}, 401, "bearer token"),
        (
            {"title_id": "tmdb:1", "genres": ["Drama"]},
            {"authorization": f"Bearer {FEEDBACK_TOKEN}x"},
            401,
            "bearer token",
        ),
        ({"title_id": "tmdb:unseen", "genres": ["Drama"]}, AUTH, 404, "no recent prediction"),
        ({"title_id": "tmdb:1"}, AUTH, 400, "genres is required"),
        ({"title_id": "tmdb:1", "genres": ["Drama"], "extra": 1}, AUTH, 400, "unknown field"),
        ({"title_id": "tmdb:1", "genres": ["x" * MAX_FEEDBACK_BYTES]}, AUTH, 400, "bytes"),
    ],
)
def test_refused_feedback_says_why_and_counts_nothing(detector, body, headers, status, says):
    with _client(detector) as client:
        _answers(client, 3, {"tmdb:1": ["Drama"]})
        answer = _post(client, body, headers)
        assert answer.status_code == status, answer.text
        assert says in answer.json()["error"]
        assert _gauge(client, "trending_feedback_window_titles", "3") is None


def test_without_a_feedback_token_the_endpoint_is_off_and_says_how_to_turn_it_on(detector):
    with _client(detector, feedback_token=None) as client:
        _answers(client, 3, {"tmdb:1": ["Drama"]})
        answer = _post(client, {"title_id": "tmdb:1", "genres": ["Drama"]})
        assert answer.status_code == 404 and "TRENDING_FEEDBACK_TOKEN" in answer.json()["error"]


def test_the_rolling_window_forgets_the_oldest_titles():
    rolling = RollingMicroF1(window=2)
    rolling.add(1, ["Drama"], ["Action"])  # all wrong, then two right: the wrong one leaves
    rolling.add(1, ["Drama"], ["Drama"])
    assert rolling.micro_f1(1) == pytest.approx(0.5)
    rolling.add(1, ["Comedy"], ["Comedy"])
    assert rolling.micro_f1(1) == 1.0 and rolling.titles(1) == 2
    assert rolling.micro_f1(2) is None


def test_the_router_ledger_still_remembers_instances_by_title_id():
    ledger = FeedbackLedger(max_titles=1)
    ledger.remember([{"title_id": "a"}, "a plot", {"title_id": "b"}], 5, [["X"], ["Y"], ["Z"]])
    assert ledger._predicted == {"b": (5, ["Z"])}


# ---- the rule, on the series the service really serves ---------------------------------------


def _scraped(detector, labels_for: dict[int, list[str]]) -> list[tuple[str, dict, float]]:
    """Feedback for 60 titles of version 3 (each labelled ``labels_for[i % 2]``), then /metrics."""
    with _client(detector) as client:
        _answers(client, 3, {f"tmdb:{i}": ["Drama"] for i in range(60)})
        for i in range(60):
            _post(client, {"title_id": f"tmdb:{i}", "genres": labels_for[i % 2]})
        text = client.get("/metrics").text
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("trending_feedback_")
    ]


def _rule(alert: str) -> dict:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r.get("alert") == alert)


def _annotations(labels: dict[str, str], value: float) -> dict[str, str]:
    """The rule's annotations rendered for one alert (the templates it uses)."""
    rendered = {}
    for key, text in _rule("PerformanceDegraded")["annotations"].items():
        text = text.replace('{{ $value | printf "%.2f" }}', f"{value:.2f}")
        for name, label in labels.items():
            text = text.replace(f"{{{{ $labels.{name} }}}}", label)
        rendered[key] = text
    return rendered


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed: apt-get install -y prometheus (Debian package)")
    return path


@pytest.mark.tools  # promtool
@pytest.mark.parametrize(
    ("labels_for", "fires"),
    [
        ({0: ["Action"], 1: ["Drama", "Comedy"]}, True),  # micro-F1 0.4
        ({0: ["Drama"], 1: ["Drama"]}, False),  # micro-F1 1.0
    ],
)
def test_performance_degraded_fires_on_the_services_own_series_and_asks_for_a_performance_run(
    detector, tmp_path: Path, labels_for, fires: bool
) -> None:
    samples = _scraped(detector, labels_for)
    gauges = [s for s in samples if s[0] in _rule("PerformanceDegraded")["expr"]]
    assert {name for name, _, _ in gauges} == {
        "trending_feedback_micro_f1",
        "trending_feedback_window_titles",
    }
    series = [
        {
            "series": name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
            "values": f"{value}x60",
        }
        for name, labels, value in gauges
    ]
    rule_labels = _rule("PerformanceDegraded")["labels"]
    expected = {"model": MODEL, "version": "3", **rule_labels}
    case: dict = {"alertname": "PerformanceDegraded", "eval_time": "40m"}
    if fires:
        (micro_f1,) = [v for n, _, v in gauges if n == "trending_feedback_micro_f1"]
        case["exp_alerts"] = [
            {"exp_labels": expected, "exp_annotations": _annotations(expected, micro_f1)}
        ]
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [case]}],
    }
    path = tmp_path / "performance.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [_promtool(), "test", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # The alert as Alertmanager sends it: the trigger asks for a performance run.
    payload = WebhookPayload.model_validate(
        {
            "version": "4",
            "groupKey": '{}/{action="retrain"}:{alertname="PerformanceDegraded"}',
            "status": "firing",
            "receiver": "retrain-trigger",
            "alerts": [
                {
                    "status": "firing",
                    "startsAt": "2026-03-01T10:00:00Z",
                    "labels": {"alertname": "PerformanceDegraded", **expected},
                }
            ],
        }
    )
    (request,) = retrain_requests(payload, models=[MODEL])
    assert (request.model_name, request.reason, request.window) == (MODEL, "performance", "fixed")
