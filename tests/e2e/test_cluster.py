"""End to end on a real cluster: `make cluster-up && make e2e` (Docker, kind, helm, skaffold).

The platform is installed by cluster-up (chart through skaffold, profile kind). These tests train on
KFP, wait for the InferenceService, call it with KServe's client, roll out a canary and trigger a
retrain through the Alertmanager webhook. They skip, with the reason, when no cluster answers.

Settings (environment): TRENDING_E2E_CONTEXT (default kind-trending), TRENDING_E2E_NAMESPACE
(default trending), TRENDING_E2E_TIMEOUT seconds per wait (default 1800).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

CONTEXT = os.environ.get("TRENDING_E2E_CONTEXT", "kind-trending")
NAMESPACE = os.environ.get("TRENDING_E2E_NAMESPACE", "trending")
TIMEOUT = float(os.environ.get("TRENDING_E2E_TIMEOUT", "1800"))
ISVC = "genre-classifier"
MODEL = "genre-classifier"
RUN_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def wait_until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:
            last_error = error
        time.sleep(5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")


@pytest.fixture(scope="module")
def kube() -> Any:
    """The kubernetes client module, configured for the e2e context; skips without a cluster."""
    from kubernetes import client, config

    try:
        config.load_kube_config(context=CONTEXT)
        client.CoreV1Api().read_namespace(NAMESPACE, _request_timeout=5)
    except Exception as error:
        pytest.skip(
            f"no reachable cluster with namespace {NAMESPACE!r} in context {CONTEXT!r} "
            f"({type(error).__name__}): run `make cluster-up` first"
        )
    return client


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def port_forward(namespace: str, target: str, remote_port: int) -> Iterator[str]:
    """`kubectl port-forward` for the duration of the block; yields http://127.0.0.1:<port>."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not found: it is needed to reach services in the cluster")
    port = free_port()
    process = subprocess.Popen(
        [
            kubectl,
            "--context",
            CONTEXT,
            "-n",
            namespace,
            "port-forward",
            target,
            f"{port}:{remote_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
            f"port-forward to {namespace}/{target}",
            timeout=60,
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def kfp_host(kube: Any) -> Iterator[str]:
    """The KFP API through a port-forward."""
    with port_forward("kubeflow", "svc/ml-pipeline", 8888) as url:
        yield url


def trending_cli(*args: str) -> str:
    """Run the `trending` CLI; returns stdout, fails the test with stderr on error."""
    cli = shutil.which("trending")
    if cli is None:
        pytest.skip("the `trending` CLI is not installed in this environment (make venv)")
    result = subprocess.run(
        [cli, *args], capture_output=True, text=True, check=False, timeout=TIMEOUT
    )
    assert result.returncode == 0, (
        f"trending {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def wait_for_run(kfp_host: str, run_id: str) -> None:
    """Wait for a KFP run and assert it succeeded."""
    import kfp

    run = kfp.Client(host=kfp_host).wait_for_run_completion(run_id, timeout=int(TIMEOUT))
    assert run.state == "SUCCEEDED", f"KFP run {run_id} ended {run.state}"


def inference_service(kube: Any) -> dict[str, Any]:
    """The InferenceService object."""
    return kube.CustomObjectsApi().get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", ISVC
    )


def isvc_ready(kube: Any) -> bool:
    """True when the InferenceService reports Ready=True."""
    conditions = inference_service(kube).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_platform_workloads_become_available(kube: Any) -> None:
    apps = kube.AppsV1Api()
    expected = {
        "trending-drift-detector",
        "trending-retrain-trigger",
        "trending-canary-controller",
        "trending-feature-server",
    }

    def available() -> bool:
        deployments = {d.metadata.name: d for d in apps.list_namespaced_deployment(NAMESPACE).items}
        return all(
            name in deployments and (deployments[name].status.available_replicas or 0) >= 1
            for name in expected
        )

    wait_until(available, f"deployments {sorted(expected)}", timeout=600)


def test_training_pipeline_runs_on_kfp(kube: Any, kfp_host: str) -> None:
    output = trending_cli("pipeline", "submit", "training", "--host", kfp_host)
    match = RUN_ID.search(output)
    assert match, f"no run id in the output of `trending pipeline submit`: {output!r}"
    wait_for_run(kfp_host, match.group(0))


def test_inference_service_is_ready_and_answers_v1_and_v2(kube: Any) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    wait_until(lambda: isvc_ready(kube), f"InferenceService {ISVC} Ready")
    title = {
        "title_id": "e2e:1",
        "title": "Night Shift",
        "kind": "movie",
        "plot": "A detective hunts a killer through the neon streets of a city that never sleeps.",
        "reviews": [],
        "year": 2024,
    }
    target = f"svc/{ISVC}-transformer"
    with port_forward(NAMESPACE, target, 80) as base_url:
        v1 = InferenceRESTClient(config=RESTConfig(protocol="v1", timeout=60))
        response = asyncio.run(v1.infer(base_url, data={"instances": [title]}, model_name=MODEL))
        assert len(response["predictions"]) == 1
        v2 = InferenceRESTClient(config=RESTConfig(protocol="v2", timeout=60))
        request = InferRequest(
            model_name=MODEL,
            infer_inputs=[
                InferInput(name="plot", shape=[1], datatype="BYTES", data=[title["plot"]])
            ],
        )
        result = asyncio.run(v2.infer(base_url, data=request, model_name=MODEL))
        assert result.outputs and result.outputs[0].shape[0] == 1


def test_canary_takes_ten_percent_then_is_decided(kube: Any, kfp_host: str) -> None:
    # A second version to roll out: train again, then deploy it as a 10 % canary.
    output = trending_cli("pipeline", "submit", "training", "--host", kfp_host)
    run = RUN_ID.search(output)
    assert run, output
    wait_for_run(kfp_host, run.group(0))
    version = os.environ.get("TRENDING_E2E_CANARY_VERSION", "2")
    trending_cli("deploy", version, "--canary", "10")

    def canary_percent() -> int | None:
        spec = inference_service(kube)["spec"]
        if spec.get("canary"):
            return int(spec["canary"][0]["trafficPercent"])
        return spec["predictor"].get("canaryTrafficPercent")

    assert wait_until(lambda: canary_percent() == 10, "canary at 10 %", timeout=300)
    wait_until(lambda: isvc_ready(kube), "InferenceService Ready with the canary")
    # The canary controller promotes or rolls back: either way the split goes away.
    wait_until(lambda: canary_percent() in (None, 0, 100), "the canary controller's decision")


def test_drift_alert_webhook_starts_a_retrain_run(kube: Any, kfp_host: str) -> None:
    import kfp

    secret = kube.CoreV1Api().read_namespaced_secret("trending-retrain-trigger", NAMESPACE)
    token = base64.b64decode(secret.data["TRENDING_TRIGGER_TOKEN"]).decode()
    client = kfp.Client(host=kfp_host)
    before = {r.run_id for r in client.list_runs(page_size=100).runs or []}
    alert = {
        "version": "4",
        "status": "firing",
        "receiver": "retrain-trigger",
        "groupLabels": {"alertname": "DriftDetected"},
        "commonLabels": {"alertname": "DriftDetected", "model": MODEL, "reason": "drift"},
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "DriftDetected",
                    "model": MODEL,
                    "version": "1",
                    "reason": "drift",
                },
                "annotations": {"summary": "e2e drift"},
                "startsAt": "2026-01-01T00:00:00Z",
                "fingerprint": f"e2e-{time.time_ns()}",
            }
        ],
    }
    with port_forward(NAMESPACE, "svc/trending-retrain-trigger", 8080) as url:
        refused = httpx.post(f"{url}/alerts", json=alert, timeout=30)
        assert refused.status_code in (401, 403)
        accepted = httpx.post(
            f"{url}/alerts", json=alert, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert accepted.status_code < 300, accepted.text
    new_runs = wait_until(
        lambda: {r.run_id for r in client.list_runs(page_size=100).runs or []} - before,
        "a continuous-training run started by the trigger",
        timeout=300,
    )
    wait_for_run(kfp_host, sorted(new_runs)[0])
