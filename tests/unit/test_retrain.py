"""Retraining requests: parameters, one run per cooldown under concurrency, launchers, webhook."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.trigger.app import TriggerService, create_app
from trending.registry import Registry
from trending.rollout.retrain import (
    KfpApiLauncher,
    LocalCommandLauncher,
    RetrainCoordinator,
    RetrainError,
    RetrainRequest,
)

MODEL = "genre-classifier"
TOKEN = "unit-test-token-0123456789abcdef"


class RecordingLauncher:
    """Records launches; optionally slow (to widen race windows) or failing."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[RetrainRequest] = []
        self.delay, self.fail = delay, fail
        self._lock = threading.Lock()

    def launch(self, request: RetrainRequest) -> str:
        time.sleep(self.delay)
        if self.fail:
            raise RetrainError("launcher down")
        with self._lock:
            self.calls.append(request)
            return f"run-{len(self.calls)}"


@pytest.fixture
def registry_uri(tmp_path: Path) -> str:
    return (tmp_path / "registry").resolve().as_uri()


def test_reason_picks_the_data_window() -> None:
    assert RetrainRequest.for_reason(MODEL, "drift").window == "drift_selected"
    assert RetrainRequest.for_reason(MODEL, "schedule").window == "growing"
    assert RetrainRequest.for_reason(MODEL, "performance").window == "fixed"
    assert RetrainRequest.for_reason(MODEL, "drift", window="growing").window == "growing"


def test_concurrent_requests_on_two_replicas_start_one_run(registry_uri: str) -> None:
    launcher = RecordingLauncher(delay=0.05)
    replicas = [RetrainCoordinator(registry_uri, launcher, owner=f"r{i}") for i in range(2)]
    decisions = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        d = replicas[i % 2].request(RetrainRequest.for_reason(MODEL, "drift"))
        with lock:
            decisions.append(d)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(launcher.calls) == 1
    assert sorted(d.status for d in decisions) == ["started"] + ["suppressed"] * 11
    kinds = [(e.kind, e.reason) for e in Registry.from_uri(registry_uri, MODEL).events()]
    assert kinds == [("retrain_requested", "drift"), ("retrain_started", "drift")]


def test_after_the_cooldown_a_new_run_starts(registry_uri: str) -> None:
    launcher = RecordingLauncher()
    coordinator = RetrainCoordinator(registry_uri, launcher, cooldown=timedelta(0))
    first = coordinator.request(RetrainRequest.for_reason(MODEL, "drift"))
    second = coordinator.request(RetrainRequest.for_reason(MODEL, "schedule"))
    assert (first.status, second.status) == ("started", "started")
    assert [c.reason for c in launcher.calls] == ["drift", "schedule"]


def test_a_failed_launch_is_logged_and_does_not_block_the_next(registry_uri: str) -> None:
    failing = RetrainCoordinator(registry_uri, RecordingLauncher(fail=True))
    assert failing.request(RetrainRequest.for_reason(MODEL, "drift")).status == "failed"
    working = RetrainCoordinator(registry_uri, RecordingLauncher())
    assert working.request(RetrainRequest.for_reason(MODEL, "drift")).status == "started"
    kinds = [e.kind for e in Registry.from_uri(registry_uri, MODEL).events()]
    assert kinds == ["retrain_requested", "retrain_failed", "retrain_requested", "retrain_started"]


@pytest.mark.tools  # starts a Python process
def test_local_launcher_runs_the_command_without_waiting(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    script = tmp_path / "fake.py"
    script.write_text(
        "import json, os, sys, time\n"
        "time.sleep(0.5)\n"
        "json.dump({'argv': sys.argv[1:], 'run': os.environ['TRENDING_RETRAIN_RUN_ID']},"
        f" open({str(out)!r}, 'w'))\n"
    )
    launcher = LocalCommandLauncher([sys.executable, str(script)], log_dir=tmp_path / "logs")
    run_id = launcher.launch(RetrainRequest.for_reason(MODEL, "data_volume"))
    assert not out.exists()  # launch returned before the child finished
    assert launcher.processes[run_id].wait(timeout=30) == 0
    assert json.loads(out.read_text()) == {
        "argv": ["--reason", "data_volume", "--window", "growing"],
        "run": run_id,
    }


def test_default_command_is_the_continuous_training_cli() -> None:
    command = LocalCommandLauncher().command(RetrainRequest.for_reason(MODEL, "drift"))
    assert command == [
        sys.executable,
        "-m",
        "cli",
        "pipeline",
        "run",
        "continuous-training",
        "--reason",
        "drift",
        "--window",
        "drift_selected",
    ]


def test_kfp_launcher_posts_a_v2beta1_run() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"], seen["auth"] = str(request.url), request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"run_id": "kfp-run-42"})

    launcher = KfpApiLauncher(
        "http://kfp:8888/",
        "pipe-1",
        "ver-2",
        experiment_id="exp",
        token="t",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert launcher.launch(RetrainRequest.for_reason(MODEL, "drift")) == "kfp-run-42"
    assert seen["url"] == "http://kfp:8888/apis/v2beta1/runs" and seen["auth"] == "Bearer t"
    assert seen["body"]["pipeline_version_reference"] == {
        "pipeline_id": "pipe-1",
        "pipeline_version_id": "ver-2",
    }
    assert seen["body"]["runtime_config"]["parameters"] == {
        "model_name": MODEL,
        "reason": "drift",
        "window": "drift_selected",
    }
    refusing = KfpApiLauncher(
        "http://kfp",
        "p",
        "v",
        client=httpx.Client(
            transport=httpx.MockTransport(
                lambda r: httpx.Response(404, text="pipeline version not found")
            )
        ),
    )
    with pytest.raises(RetrainError, match="not found"):
        refusing.launch(RetrainRequest.for_reason(MODEL, "drift"))


def _payload(**labels: str) -> dict:
    return {
        "version": "4",
        "groupKey": "g",
        "status": "firing",
        "receiver": "retrain-trigger",
        "alerts": [
            {
                "status": "firing",
                "startsAt": "2024-05-01T10:00:00Z",
                "labels": {"alertname": "DriftDetected", "action": "retrain", **labels},
            }
        ],
    }


@pytest.fixture
def client(registry_uri: str):
    launcher = RecordingLauncher()
    service = TriggerService(RetrainCoordinator(registry_uri, launcher), TOKEN)
    with TestClient(create_app(service)) as c:
        c.launcher = launcher
        yield c


def test_webhook_needs_the_bearer_token(client) -> None:
    body = _payload(model=MODEL, reason="drift")
    assert client.post("/alerts", json=body).status_code == 401
    assert (
        client.post("/alerts", json=body, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    assert (
        client.post("/alerts", json=body, headers={"Authorization": f"Basic {TOKEN}"}).status_code
        == 401
    )
    assert client.launcher.calls == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": "3"}, "webhook v4"),
        (_payload(reason="drift"), "no 'model' label"),
        (_payload(model=MODEL, reason="boredom"), "reason='boredom'"),
        (_payload(model=MODEL, reason="drift", window="forever"), "window='forever'"),
        (_payload(model="Bad Name", reason="drift"), "does not retrain"),
    ],
)
def test_bad_payloads_get_400_with_the_fix(client, body: dict, message: str) -> None:
    answer = client.post("/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert client.launcher.calls == []


def test_webhook_starts_one_run_and_ignores_other_alerts(client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = _payload(model=MODEL, reason="drift")
    body["alerts"].append(
        {
            "status": "firing",
            "startsAt": "2024-05-01T10:00:00Z",
            "labels": {"alertname": "HighLatencyP95", "model": MODEL},
        }
    )
    first = client.post("/alerts", json=body, headers=auth).json()["decisions"]
    again = client.post("/alerts", json=body, headers=auth).json()["decisions"]
    assert [d["status"] for d in first + again] == ["started", "suppressed"]
    assert len(client.launcher.calls) == 1
    assert (
        'trending_retrain_runs_total{model="genre-classifier",reason="drift"} 1.0'
        in client.get("/metrics").text
    )


def test_short_tokens_are_refused(registry_uri: str) -> None:
    with pytest.raises(ValueError, match="16 characters"):
        TriggerService(RetrainCoordinator(registry_uri, RecordingLauncher()), "short")


def test_one_vocabulary_every_reason_has_a_window_that_select_window_knows() -> None:
    from typing import get_args

    from trending.data.windows import WINDOW_KINDS, WindowKind
    from trending.rollout.retrain import DEFAULT_WINDOW, RETRAIN_REASONS, RetrainReason

    assert get_args(RetrainReason) == RETRAIN_REASONS
    assert get_args(WindowKind) == WINDOW_KINDS
    assert set(DEFAULT_WINDOW) == set(RETRAIN_REASONS)
    assert set(DEFAULT_WINDOW.values()) <= set(WINDOW_KINDS)
    for reason in RETRAIN_REASONS:  # the request model accepts exactly the vocabulary
        assert RetrainRequest.for_reason(MODEL, reason).window == DEFAULT_WINDOW[reason]
    with pytest.raises(ValueError):
        RetrainRequest(model_name=MODEL, reason="boredom", window="growing")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RetrainRequest(model_name=MODEL, reason="drift", window="sliding")  # type: ignore[arg-type]


def test_an_alert_for_an_unconfigured_model_gets_400_and_creates_nothing(
    client, registry_uri: str, tmp_path: Path
) -> None:
    body = _payload(model="some-other-model", reason="drift")
    answer = client.post("/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 400, answer.text
    assert "model='some-other-model'" in answer.json()["error"]
    assert "genre-classifier" in answer.json()["error"]  # says what is configured
    assert client.launcher.calls == []
    assert not (tmp_path / "registry" / "models" / "some-other-model").exists()
    coordinator = RetrainCoordinator(registry_uri, RecordingLauncher(), models=["genre-classifier"])
    with pytest.raises(RetrainError, match="not retrained by this trigger"):
        coordinator.request(RetrainRequest.for_reason("some-other-model", "drift"))
    assert not (tmp_path / "registry" / "models").exists()


def test_a_repeat_alert_is_suppressed_however_busy_the_event_log(registry_uri: str) -> None:
    launcher = RecordingLauncher()
    # claim_timeout 0: a deduplication that lost track of the first run would start another.
    coordinator = RetrainCoordinator(
        registry_uri, launcher, cooldown=timedelta(hours=6), claim_timeout=timedelta(0)
    )
    first = coordinator.request(RetrainRequest.for_reason(MODEL, "drift"))
    registry = Registry.from_uri(registry_uri, MODEL)
    for i in range(1_100):  # more events than any fixed scan window of 1,000 would see
        registry.log_event("gate_decision", actor="gate", reason=f"busy {i}")

    repeat = coordinator.request(RetrainRequest.for_reason(MODEL, "drift"))
    other_replica = RetrainCoordinator(registry_uri, launcher, claim_timeout=timedelta(0))
    from_another_replica = other_replica.request(RetrainRequest.for_reason(MODEL, "schedule"))

    assert first.status == "started"
    assert repeat.status == "suppressed" and repeat.run_id == first.run_id
    assert from_another_replica.status == "suppressed"
    assert from_another_replica.run_id == first.run_id
    assert len(launcher.calls) == 1
    entry = coordinator.index_entry(MODEL)
    assert entry is not None and entry.last_run_id == first.run_id and entry.starting is None
