"""``python -m serving.canary`` as its pod runs it, with no Kubernetes API: up, waiting, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_the_controller_starts_and_stays_up_without_a_kubernetes_api(tmp_path):
    port_file = tmp_path / "ports.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRENDING_", "KUBERNETES_", "KUBECONFIG"))
    }
    env.update(
        HOME=str(tmp_path),
        TRENDING_REGISTRY_URI=(tmp_path / "registry").as_uri(),
        TRENDING_PROMETHEUS_URL="http://127.0.0.1:9",
        TRENDING_INFERENCE_SERVICE="genres",
        TRENDING_NAMESPACE="trending",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.canary",
            "--port",
            "0",
            "--port_file",
            str(port_file),
            "--interval_seconds",
            "1",
            "--max_backoff_seconds",
            "2",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                port = json.loads(port_file.read_text())["http"]
                alive = httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                if alive and ready.text != "starting":  # the first pass has run
                    break
            except (httpx.HTTPError, FileNotFoundError):
                pass
            assert time.monotonic() < deadline, "the controller never served /healthz"
            time.sleep(0.2)
        assert ready.status_code == 503 and "no Kubernetes API configured" in ready.text
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'trending_canary_controller_connected{target="kubernetes"} 0.0' in metrics
        assert process.poll() is None
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert "not connected to kubernetes: no Kubernetes API configured" in stderr
