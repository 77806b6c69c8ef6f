"""The retrain trigger on the cluster: the chart's trigger starts the uploaded pipeline version on KFP.

The trigger runs with the environment the chart renders for it (its settings ConfigMap and its own
variables; only the KFP host points at tests/fakes/kfp_api.py, a recording endpoint that answers
like KFP's v2beta1 API). Every request body the trigger's ``kfp.Client`` sends is judged by
``kfp_server_api``'s models. The chart's schedule (the pipelines Job's ``trending pipeline
schedule`` container) is run the same way, and its recurring run must carry the same parameters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from fakes.kfp_api import FakeKfpApi, as_model
from fastapi.testclient import TestClient

from serving.trigger.__main__ import _launcher, parse
from serving.trigger.app import TriggerService, create_app
from trending.rollout.retrain import RetrainCoordinator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "trending"
TOKEN = "kfp-trigger-test-token-0123456789"
SECRET = "placeholder-secret-value-0123456789"
# What only the alert knows; every other parameter comes from the settings.
REQUEST_PARAMETERS = {"reason", "window", "alert_group", "drift_since"}


def _rendered(values_file: str = "kind-values.yaml") -> list[dict[str, Any]]:
    helm.disable_logging()
    values = yaml.safe_load((CHART / "ci" / values_file).read_text())
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=values, name="trending", namespace="trending", is_install=True)
    return [
        d
        for path, text in files.items()
        if path.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]


def _container(objects: list[dict[str, Any]], kind: str, component: str, name: str) -> dict:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        if obj["kind"] == kind and labels.get("app.kubernetes.io/component") == component:
            pod = obj["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                if container["name"] == name:
                    return container
    raise AssertionError(f"no {kind} {component} container {name} rendered")


def _environment(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it (Secrets as placeholders)."""
    configmaps = {
        o["metadata"]["name"]: o.get("data") or {} for o in objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = str(item["value"]) if "value" in item else SECRET
    return env


def _process_environment(env: dict[str, str], kfp_url: str) -> dict[str, str]:
    """The pod's variables on this machine: the KFP host is the recording endpoint."""
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "VIRTUAL_ENV") if k in os.environ}
    return {**keep, **env, "TRENDING_KFP_HOST": kfp_url, "HOME": os.environ.get("HOME", "/tmp")}


def _webhook(alertname: str, reason: str, starts_at: str) -> dict[str, Any]:
    labels = {
        "alertname": alertname,
        "model": "genre-classifier",
        "action": "retrain",
        "reason": reason,
        "severity": "warning",
        "version": "3",
        "detector": "semantic",
    }
    group = f'{{alertname="{alertname}", model="genre-classifier"}}'
    return {
        "version": "4",
        "groupKey": '{}/{action="retrain"}:' + group,
        "status": "firing",
        "receiver": "retrain-trigger",
        "groupLabels": {"alertname": alertname},
        "alerts": [
            {"status": "firing", "labels": labels, "startsAt": starts_at, "fingerprint": "abc123"}
        ],
    }


def _effective_parameters(body: Any) -> dict[str, Any]:
    """Compiled defaults of an inline pipeline spec, overridden by the runtime parameters."""
    spec = body.pipeline_spec or {}
    spec = spec.get("pipeline_spec", spec)  # with a platform spec, the client sends both
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    values = {k: p.get("defaultValue") for k, p in declared.items() if "defaultValue" in p}
    return {**values, **(body.runtime_config.parameters or {})}


@pytest.fixture(scope="module")
def chart_objects() -> list[dict[str, Any]]:
    return _rendered()


def test_trigger_starts_the_uploaded_version_with_every_settings_parameter_and_the_schedule_agrees(
    tmp_path: Path, chart_objects: list[dict[str, Any]]
) -> None:
    chart_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    trigger = _container(chart_objects, "Deployment", "retrain-trigger", "retrain-trigger")
    schedule = _container(chart_objects, "Job", "pipelines", "schedule")
    with FakeKfpApi() as kfp:
        kfp.upload("continuous-training", "0.0.9")  # an older release's upload
        pipeline_id, version_id = kfp.upload("continuous-training", chart_version)
        kfp.upload("training", chart_version)
        env = _process_environment(_environment(chart_objects, trigger), kfp.url)
        settings = parse([], env)  # the trigger's own settings class judges the rendered env
        assert settings.launcher == "kfp"
        launcher = _launcher(settings, env["TRENDING_KFP_HOST"])
        launcher.environ = env  # type: ignore[attr-defined]
        # No cooldown: the repeated alert group starts a second run, visible by its name.
        coordinator = RetrainCoordinator(
            (tmp_path / "registry").as_uri(), launcher, cooldown=timedelta(0)
        )
        client = TestClient(create_app(TriggerService(coordinator, TOKEN)))
        auth = {"authorization": f"Bearer {TOKEN}"}
        for _ in range(2):  # the same alert group twice: two runs of one name
            answer = client.post(
                "/alerts",
                json=_webhook("DriftDetected", "drift", "2026-03-01T10:00:00Z"),
                headers=auth,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["decisions"][0]["status"] == "started", answer.text
        answer = client.post(
            "/alerts",
            json=_webhook("PerformanceDegraded", "performance", "2026-03-01T11:00:00Z"),
            headers=auth,
        )
        assert answer.json()["decisions"][0]["run_id"] == "run-3", answer.text

        sched_env = _process_environment(_environment(chart_objects, schedule), kfp.url)
        args = [str(a) for a in schedule["args"]]
        assert args[:3] == ["trending", "pipeline", "schedule"]
        args[args.index("--host") + 1] = kfp.url
        done = subprocess.run(
            [sys.executable, "-m", "cli", *args[1:]],
            env=sched_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    runs = [as_model(r.body, "V2beta1Run") for r in kfp.recorded("POST", "/runs")]
    assert len(runs) == 3
    drift, repeat, performance = runs
    for run in runs:  # the uploaded version of this release, not an older one, not inline IR
        assert run.pipeline_version_reference.pipeline_id == pipeline_id
        assert run.pipeline_version_reference.pipeline_version_id == version_id
        assert run.pipeline_spec is None
        assert run.experiment_id == kfp.experiments[0]["experiment_id"]
    assert kfp.experiments[0]["display_name"] == settings.kfp_experiment
    assert drift.display_name == repeat.display_name != performance.display_name
    assert 'alertname="DriftDetected"' in drift.display_name
    parameters = drift.runtime_config.parameters
    assert parameters["reason"] == "drift" and parameters["window"] == "drift_selected"
    assert parameters["drift_since"].startswith("2026-03-01T10:00:00")
    assert parameters["alert_group"] == '{alertname="DriftDetected", model="genre-classifier"}'
    assert performance.runtime_config.parameters["reason"] == "performance"
    assert performance.runtime_config.parameters["window"] == "fixed"
    # Every parameter the settings give: the chart's stores, model, Feast env and backend.
    configmap = _environment(chart_objects, trigger)
    assert parameters["registry_uri"] == configmap["TRENDING_REGISTRY_URI"]
    assert parameters["model_name"] == configmap["TRENDING_MODEL_NAME"]
    assert parameters["drift_backend"] == "alibi"
    assert {"data_uri", "feature_repo", "feast_dir", "feature_store_yaml", "seed"} <= set(
        parameters
    )

    (job,) = [
        as_model(r.body, "V2beta1RecurringRun") for r in kfp.recorded("POST", "/recurringruns")
    ]
    assert job.trigger.cron_schedule.cron == schedule["args"][schedule["args"].index("--cron") + 1]
    scheduled = _effective_parameters(job)
    shared = set(parameters) - REQUEST_PARAMETERS
    assert {k: scheduled[k] for k in shared} == {k: parameters[k] for k in shared}
    assert scheduled["reason"] == "schedule"


def test_a_refused_run_is_a_failed_decision_that_says_why(
    tmp_path: Path, chart_objects: list[dict[str, Any]]
) -> None:
    trigger = _container(chart_objects, "Deployment", "retrain-trigger", "retrain-trigger")
    with FakeKfpApi(refuse_runs=True) as kfp:
        kfp.upload("continuous-training", "0.1.0")
        env = _process_environment(_environment(chart_objects, trigger), kfp.url)
        launcher = _launcher(parse([], env), kfp.url)
        launcher.environ = env  # type: ignore[attr-defined]
        coordinator = RetrainCoordinator((tmp_path / "registry").as_uri(), launcher)
        client = TestClient(create_app(TriggerService(coordinator, TOKEN)))
        answer = client.post(
            "/alerts",
            json=_webhook("DriftDetected", "drift", "2026-03-01T10:00:00Z"),
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    decision = answer.json()["decisions"][0]
    assert decision["status"] == "failed"
    assert "KFP did not start the run" in decision["detail"]
    assert "Traceback" not in decision["detail"]
