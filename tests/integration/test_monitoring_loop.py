"""The closed loop on loopback with real processes: drifted traffic -> drift service -> Prometheus
(rules from monitoring/) -> Alertmanager (config from monitoring/) -> retrain trigger -> exactly one
continuous-training launch (a real subprocess) and the story in the registry's event log."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cli.local_monitoring import (
    MonitoringBinariesMissingError,
    find_monitoring_binaries,
    running_monitoring,
)
from cli.processes import flags, running_service, wait_until
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import fit_drift_detector, skew_feature_values
from trending.registry import Registry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
MODEL = "genre-classifier"
TOKEN = "integration-test-token-0123456789"
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
WINDOW = 300

FAKE_PIPELINE = """\
import json, os, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"argv": sys.argv[2:], "run_id": os.environ["TRENDING_RETRAIN_RUN_ID"],
                        "model": os.environ["TRENDING_MODEL_NAME"]}) + "\\n")
"""


def _binaries() -> dict[str, str]:
    try:
        return find_monitoring_binaries()
    except MonitoringBinariesMissingError as exc:
        pytest.skip(str(exc))


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.25
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    try:
        return wait_until(what, check, timeout, every)
    except TimeoutError as exc:
        pytest.fail(str(exc))


def send_traffic(url: str, titles, version: str = "1", batch: int = 50) -> None:
    """Requests in binary mode, responses in structured mode, as the KServe logger does."""
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(titles), batch):
            part = titles.iloc[start : start + batch]
            event_id = f"evt-{version}-{start}"
            instances = [
                {"plot": p, "reviews": list(r)}
                for p, r in zip(part["plot"], part["reviews"], strict=True)
            ]
            headers = {
                "ce-specversion": "1.0",
                "ce-id": event_id,
                "ce-source": "http://localhost/test",
                "ce-type": REQUEST_TYPE,
                "ce-inferenceservicename": MODEL,
                "ce-modelversion": version,
                "content-type": "application/json",
            }
            r = client.post(url, headers=headers, content=json.dumps({"instances": instances}))
            assert r.status_code == 202, r.text
            structured = {
                "specversion": "1.0",
                "id": event_id,
                "source": "http://localhost/test",
                "type": RESPONSE_TYPE,
                "inferenceservicename": MODEL,
                "modelversion": version,
                "datacontenttype": "application/json",
                "data": {
                    "predictions": [{"genres": list(g), "scores": {}} for g in part["genres"]]
                },
            }
            r = client.post(
                url,
                headers={"content-type": "application/cloudevents+json"},
                content=json.dumps(structured),
            )
            assert r.status_code == 202, r.text


def webhook_payload(model: str = MODEL) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}/{action="retrain"}:{alertname="DriftDetected", model="' + model + '"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "retrain-trigger",
        "groupLabels": {"alertname": "DriftDetected", "model": model},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "DriftDetected",
                    "model": model,
                    "version": "1",
                    "detector": "features",
                    "action": "retrain",
                    "reason": "drift",
                },
                "annotations": {},
                "startsAt": "2024-05-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": "abc123",
            }
        ],
    }


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_drift_alert_starts_exactly_one_retraining_run(tmp_path: Path) -> None:
    binaries = _binaries()
    # The detector the training pipeline would store in the bundle, fitted on the reference.
    reference = generate_titles(800, seed=1)
    genres = list(DEFAULT_GENRES)
    one_hot = np.array(
        [[1.0 if g in labels else 0.0 for g in genres] for labels in reference["genres"]]
    )
    bundle = tmp_path / "bundle"
    fit_drift_detector(
        texts_of(reference),
        one_hot,
        bundle,
        genres=genres,
        reference_skew=skew_feature_values(
            zip(reference["plot"], reference["reviews"], strict=True)
        ),
    )
    registry_uri = (tmp_path / "registry").resolve().as_uri()
    launches = tmp_path / "launches.jsonl"
    fake = tmp_path / "fake_pipeline.py"
    fake.write_text(FAKE_PIPELINE)
    token_file = tmp_path / "trigger-token"
    token_file.write_text(TOKEN + "\n")

    with ExitStack() as stack:
        drift = stack.enter_context(
            running_service(
                "serving.drift",
                flags(
                    bundle=bundle,
                    model_name=MODEL,
                    window_size=WINDOW,
                    min_window=100,
                    interval=0.5,
                    port=0,
                ),
                tmp_path / "drift.log",
            )
        )
        trigger = stack.enter_context(
            running_service(
                "serving.trigger",
                flags(
                    token_file=token_file,
                    registry_uri=registry_uri,
                    model_name=MODEL,
                    cooldown_seconds=3600,
                    command=f"{sys.executable} {fake} {launches}",
                    port=0,
                ),
                tmp_path / "trigger.log",
            )
        )
        # The repository's rules and routing, with the test's addresses, token file and time
        # scale; repeat_interval 1 s makes Alertmanager itself send duplicate notifications.
        monitoring = stack.enter_context(
            running_monitoring(
                binaries,
                {"drift": drift.address, "trigger": trigger.address},
                token_file,
                tmp_path,
                drift_alert_for="1s",
                alert_timers={"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1s"},
                monitoring_dir=MONITORING,
            )
        )
        url = {
            "drift": drift.url,
            "trigger": trigger.url,
            "prometheus": monitoring["prometheus"].url,
        }

        # 1. An unauthenticated or wrongly authenticated webhook call is refused.
        assert httpx.post(f"{url['trigger']}/alerts", json=webhook_payload()).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token-at-all-000000"}
        assert (
            httpx.post(
                f"{url['trigger']}/alerts", json=webhook_payload(), headers=wrong
            ).status_code
            == 401
        )

        # 2. Traffic like the reference: scored, no drift.
        send_traffic(url["drift"], generate_titles(WINDOW, seed=21))

        def scored_full_window() -> list[dict[str, Any]]:
            rows = httpx.get(f"{url['drift']}/drift").json()
            return [r for r in rows if r["window_size"] == WINDOW and len(r["detectors"]) == 2]

        calm = wait_for("the first full window to be scored", scored_full_window)
        assert calm[0]["is_drift"] is False, calm

        # 3. Drifted traffic replaces the window: new words, uniform genres, longer plots.
        drifted = generate_titles(
            WINDOW,
            seed=22,
            drift=DriftKnobs(vocabulary_shift=0.6, genre_prior_shift=1.0, text_length_scale=1.6),
        )
        send_traffic(url["drift"], drifted)
        wait_for(
            "the drift service to flag drift",
            lambda: (
                _metric(
                    httpx.get(f"{url['drift']}/metrics").text,
                    "trending_drift_is_drift",
                    version="1",
                    detector="features",
                )
                == 1.0
            ),
        )

        # 4. Prometheus fires the repository's DriftDetected alert.
        def firing() -> list[dict[str, Any]]:
            alerts = httpx.get(f"{url['prometheus']}/api/v1/alerts").json()["data"]["alerts"]
            return [
                a
                for a in alerts
                if a["labels"]["alertname"] == "DriftDetected" and a["state"] == "firing"
            ]

        fired = wait_for("Prometheus to fire DriftDetected", firing)
        assert fired[0]["labels"]["action"] == "retrain" and fired[0]["labels"]["model"] == MODEL

        # 5. Alertmanager calls the trigger, which launches the (fake) continuous-training run.
        wait_for("the trigger to launch a run", lambda: launches.exists() and launches.read_text())

        # 6. A storm of duplicates: ours in parallel, plus Alertmanager's own repeats.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{url['trigger']}/alerts", json=webhook_payload(), headers=auth, timeout=30
                    ),
                    range(16),
                )
            )
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        assert {a.json()["decisions"][0]["status"] for a in answers} == {"suppressed"}
        wait_for(
            "Alertmanager to repeat its notification",
            lambda: (
                (
                    _metric(
                        httpx.get(f"{url['trigger']}/metrics").text,
                        "trending_retrain_webhook_total",
                        code="200",
                    )
                    or 0
                )
                >= 16 + 3
            ),
        )

        # Exactly one launch, and the registry's event log tells the story.
        lines = [json.loads(line) for line in launches.read_text().splitlines()]
        assert len(lines) == 1, lines
        assert lines[0]["argv"] == ["--reason", "drift", "--window", "drift_selected"]
        assert lines[0]["model"] == MODEL
        events = Registry.from_uri(registry_uri, MODEL).events()
        story = [(e.kind, e.reason) for e in events]
        assert story == [("retrain_requested", "drift"), ("retrain_started", "drift")], story
        started = events[-1]
        assert started.details["run_id"] == lines[0]["run_id"]
        assert started.details["window"] == "drift_selected"
        assert events[0].details["evidence"]["alertname"] == "DriftDetected"
        runs = _metric(
            httpx.get(f"{url['trigger']}/metrics").text,
            "trending_retrain_runs_total",
            model=MODEL,
            reason="drift",
        )
        assert runs == 1.0
