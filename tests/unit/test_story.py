"""cli.story: the timeline from a real registry's event log and the HTML report."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.story import (
    DriftSample,
    below_default_policy,
    find_gate_decision,
    gate_reasons,
    timeline,
    write_report,
)
from trending.data.synthetic import generate_titles
from trending.modelling.runs import RunRecord
from trending.modelling.training import train_bundle
from trending.registry import Registry

MODEL = "genre-classifier"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    """A real registry with the loop's story: v1 production, retrain, v2 canary, promote, rollback."""
    root = tmp_path_factory.mktemp("story")
    bundle = root / "bundle"
    train_bundle(
        generate_titles(120, seed=3), bundle, params={"n_estimators": 5, "max_depth": 2}, seed=3
    )
    registry = Registry.from_uri((root / "registry").as_uri(), MODEL)
    v1 = registry.register_version(bundle, actor="kfp:training-pipeline", reason="first model")
    registry.promote(v1, actor="kfp:training-pipeline", reason="first version")
    registry.log_event(
        "retrain_requested",
        actor="retrain-trigger",
        reason="drift",
        details={"window": "drift_selected", "evidence": {"alertname": "DriftDetected"}},
    )
    registry.log_event(
        "retrain_started",
        actor="retrain-trigger",
        reason="drift",
        details={"run_id": "local-abc123", "window": "drift_selected"},
    )
    registry.log_event(
        "gate_decision",
        actor="kfp:continuous-training",
        reason="drift",
        details={
            "run_id": "run-2",
            "champion": "xgboost",
            "candidates": [
                {"model_family": "xgboost", "micro_f1": 0.91, "gate_passed": True},
                {"model_family": "bert", "micro_f1": 0.2, "gate_passed": False},
            ],
        },
    )
    v2 = registry.register_version(bundle, actor="kfp:continuous-training", reason="drift")
    registry.set_canary(v2, actor="kfp:continuous-training", reason="staged after the gate")
    registry.log_event(
        "retrain_finished",
        actor="kfp:continuous-training",
        reason="drift",
        version=v2,
        details={"outcome": "deployed-as-canary", "champion": "xgboost", "status": "succeeded"},
    )
    for percent, action in ((25, "promote"), (50, "promote")):
        registry.log_event(
            "canary_decision",
            actor="canary-controller",
            reason="all checks pass",
            version=v2,
            details={"action": action, "traffic_percent": percent, "checks": []},
        )
    registry.promote(v2, actor="canary-controller", reason="canary passed every step")
    registry.clear_canary(actor="canary-controller", reason="promoted")
    registry.set_canary(v1, actor="demo", reason="broken canary")
    registry.log_event(
        "canary_decision",
        actor="canary-controller",
        reason="failed: error_rate",
        version=v1,
        details={"action": "rollback", "traffic_percent": 25, "checks": []},
    )
    registry.clear_canary(actor="canary-controller", reason="rolled back at 25%")
    return registry


def test_timeline_tells_the_loop_in_order(registry):
    lines = timeline(registry.events())
    kinds = [line.split()[1] for line in lines]
    assert kinds[:2] == ["register", "promote"]
    assert kinds.index("retrain_requested") < kinds.index("retrain_started")
    assert kinds.index("retrain_started") < kinds.index("gate_decision")
    assert kinds.index("gate_decision") < kinds.index("retrain_finished")
    assert kinds.count("canary_decision") == 3
    assert all(re.match(r"^\+\d\d:\d\d  ", line) for line in lines), lines
    text = "\n".join(lines)
    assert "production -> v2" in text
    assert "alert DriftDetected" in text
    assert "retrain finished: deployed-as-canary" in text
    assert "gate: champion xgboost; micro-F1 xgboost 0.910, bert 0.200 (failed)" in text
    assert "canary v1 at 25%: rollback (failed: error_rate)" in text


def test_timeline_offsets_count_from_start(registry):
    events = registry.events()
    start = events[0].at - timedelta(minutes=2, seconds=5)
    assert timeline(events, start=start)[0].startswith("+02:05  register")
    assert timeline([]) == []


DECISION = {
    "run_id": "run-2",
    "choice": {"champion": "xgboost"},
    "decisions": {
        "xgboost": {
            "checks": [
                {
                    "name": "floor:micro_f1",
                    "passed": True,
                    "observed": 0.9,
                    "required": 0.5,
                    "message": "micro-F1 0.900 meets the floor 0.500",
                },
                {
                    "name": "robustness:directional:horror",
                    "passed": True,
                    "observed": 0.36,
                    "required": 0.0,
                    "message": "72/200 cases pass",
                },
                {
                    "name": "regression:micro_f1",
                    "passed": False,
                    "observed": -0.01,
                    "required": 0.0,
                    "message": "micro_f1 0.890 vs production 0.900",
                },
                {
                    "name": "baseline:linear",
                    "passed": True,
                    "observed": -0.005,
                    "required": -0.01,
                    "message": "micro-F1 0.895 vs linear baseline 0.900",
                },
            ]
        }
    },
}


def test_gate_reasons_put_failures_first():
    reasons = gate_reasons(DECISION)
    assert reasons[0] == "FAIL regression:micro_f1: micro_f1 0.890 vs production 0.900"
    assert "PASS floor:micro_f1: micro-F1 0.900 meets the floor 0.500" in reasons
    assert gate_reasons({}) == []


def test_below_default_policy_names_relaxed_checks():
    lines = below_default_policy(DECISION)
    assert len(lines) == 2
    assert lines[0].startswith("robustness:directional:horror: 0.36 < default 0.8")
    assert lines[1].startswith("baseline:linear: -0.005 <= default 0.0")


def test_find_gate_decision_by_run_id(tmp_path):
    import json

    for run_id in ("run-1", "run-2"):
        folder = tmp_path / f"pipeline-{run_id}" / "gate"
        folder.mkdir(parents=True)
        (folder / "decision").write_text(json.dumps({**DECISION, "run_id": run_id}))
    assert find_gate_decision(tmp_path, "run-2")["run_id"] == "run-2"
    assert find_gate_decision(tmp_path, "run-9") is None


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_has_every_section_with_plots(registry, tmp_path):
    zero = registry.events()[0].at
    drift = [
        DriftSample(zero + timedelta(seconds=i), "1", detector, p, 0.05, p < 0.05, phase)
        for i, (p, phase) in enumerate([(0.6, "normal"), (0.4, "normal"), (1e-6, "drifted")])
        for detector in ("features", "predictions")
    ]
    runs = [
        RunRecord(
            model_name=MODEL,
            run_id="run-1",
            champion="xgboost",
            registered_version=1,
            metrics={
                "xgboost": {"micro_f1": 0.95, "macro_f1": 0.9},
                "linear": {"micro_f1": 0.93, "macro_f1": 0.88},
            },
        ),
        RunRecord(
            model_name=MODEL,
            run_id="run-2",
            champion="xgboost",
            registered_version=2,
            params={"reason": "drift"},
            metrics={
                "xgboost": {"micro_f1": 0.91, "macro_f1": 0.9},
                "production": {"micro_f1": 0.86, "macro_f1": 0.8},
            },
        ),
    ]
    path = write_report(
        tmp_path / "out" / "report.html",
        events=registry.events(),
        runs=runs,
        drift=drift,
        gate={"retraining run": gate_reasons(DECISION)},
    )
    page = path.read_text()
    for section in ('id="timeline"', 'id="drift"', 'id="canary"', 'id="runs"', 'id="gate"'):
        assert section in page
    images = _images(page)
    assert len(images) == 3  # drift p-values, canary steps, per-family metrics
    assert all(image.startswith(b"\x89PNG") for image in images)
    assert "retrain finished: deployed-as-canary" in page
    assert "FAIL regression:micro_f1" in page
    assert "<td>run-2</td><td>xgboost (champion)</td><td>0.910</td>" in page


def test_report_without_monitoring_says_so(registry, tmp_path):
    path = write_report(tmp_path / "report.html", events=registry.events()[:2])
    page = path.read_text()
    assert "No drift scores were collected" in page
    assert "No canary ran." in page
    assert "No training runs recorded." in page
    assert len(_images(page)) == 0
    assert "production -&gt; v1" in page


def test_timeline_handles_unknown_kinds(registry):
    event = registry.events()[0].model_copy(
        update={"kind": "something_new", "reason": "why", "at": datetime.now(UTC)}
    )
    assert timeline([event])[0].endswith("something_new v1 (why)")


def test_report_path_is_returned(tmp_path: Path, registry):
    assert write_report(tmp_path / "r.html", events=[]).name == "r.html"
