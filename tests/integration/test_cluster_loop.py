"""The cluster profile's closed loop, end to end, with real Prometheus and Alertmanager.

1. Drifted request/response events go into the drift service (``python -m serving.drift``,
   Alibi Detect backend), as the predictors' payload logger sends them.
2. Prometheus, running the repository's rules (``cli.local_monitoring`` rewires only addresses,
   the token file and the time scale), fires DriftDetected.
3. Alertmanager, running the repository's routing, calls the retrain trigger (``python -m
   serving.trigger --launcher kfp``), whose ``kfp.Client`` starts the uploaded continuous-training
   version on tests/fakes/kfp_api.py; every request body is judged by ``kfp_server_api``'s models.
4. A canary registered as a continuous-training run registers it (a bundle, then the ``canary``
   alias) is picked up by the canary controller (serving/canary's reconciler) against
   tests/fakes/kube_api.py, with tests/fakes/prometheus_api.py for evidence.
5. Every InferenceService patch, and every object it produces, is judged by the kserve models.
6. A healthy canary is promoted; a broken one is rolled back.

Only what a cluster would run is replaced: the KFP API server, the Kubernetes API server and the
canary's request metrics. The rule ``for`` windows and Alertmanager timers are shortened (as in
tests/integration/test_monitoring_loop.py) to keep the test fast.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fakes.kfp_api import FakeKfpApi, as_model
from fakes.kube_api import MERGE_PATCH, FakeKubeApi, apply_merge_patch
from fakes.prometheus_api import StubPrometheus, VersionNumbers
from fixtures.bundles import make_bundle
from fixtures.chart import NAMESPACE, chart_inference_service
from fixtures.kserve_models import build, check_merge_patch

from cli.local_monitoring import (
    MonitoringBinariesMissingError,
    find_monitoring_binaries,
    running_monitoring,
)
from cli.processes import flags, running_service, wait_until
from serving.canary.actuators import KServeActuator
from serving.canary.kube import KubeInferenceServiceApi
from serving.canary.reconciler import CanaryReconciler, PassResult
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import fit_drift_detector
from trending.monitoring.prom import PrometheusClient
from trending.registry import Registry
from trending.rollout.canary import CanaryPolicy
from trending.rollout.deploy import canary_state

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MODEL = "genre-classifier"
ISVC = "genre-classifier"
TOKEN = "cluster-loop-trigger-token-0123456789"
APP_VERSION = "0.9.0"
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
WINDOW = 300
POLICY = CanaryPolicy(steps=[10, 50], window_seconds=60, settle_seconds=5, min_requests=100)
HEALTHY = VersionNumbers()
BROKEN = VersionNumbers(errors=120.0)  # 30 % of the canary's requests fail


def _binaries() -> dict[str, str]:
    try:
        return find_monitoring_binaries()
    except MonitoringBinariesMissingError as exc:
        pytest.skip(str(exc))


def _wait(what: str, check: Any, timeout: float = 90.0) -> Any:
    try:
        return wait_until(what, check, timeout)
    except TimeoutError as exc:
        pytest.fail(str(exc))


def send_events(url: str, titles: pd.DataFrame, version: str, batch: int = 50) -> None:
    """Each batch as the payload logger sends it: the request, then its response (one ce-id)."""
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(titles), batch):
            part = titles.iloc[start : start + batch]
            common = {
                "ce-specversion": "1.0",
                "ce-id": f"evt-{version}-{start}",
                "ce-source": "http://predictor",
                "ce-inferenceservicename": ISVC,
                "ce-modelversion": version,
                "content-type": "application/json",
            }
            request = {
                "instances": [
                    {"title_id": t, "plot": p, "reviews": list(r)}
                    for t, p, r in zip(part["title_id"], part["plot"], part["reviews"], strict=True)
                ]
            }
            response = {
                "predictions": [
                    {"title_id": t, "genres": list(g)}
                    for t, g in zip(part["title_id"], part["genres"], strict=True)
                ]
            }
            for kind, body in ((REQUEST_TYPE, request), (RESPONSE_TYPE, response)):
                answer = client.post(url, headers={**common, "ce-type": kind}, json=body)
                assert answer.status_code == 202, answer.text


def drift_bundle(root: Path) -> Path:
    """The detector the training pipeline stores in the bundle: Alibi Detect, fitted on the
    reference (the semantic detector is left out: its MiniLM encoder is timed in bench_drift)."""
    reference = generate_titles(800, seed=1)
    genres = list(DEFAULT_GENRES)
    one_hot = np.array([[1.0 if g in gs else 0.0 for g in genres] for gs in reference["genres"]])
    bundle = root / "drift-bundle"
    fit_drift_detector(
        texts_of(reference), one_hot, bundle, genres=genres, backend="alibi", semantic=False
    )
    assert json.loads((bundle / "drift" / "config.json").read_text())["backend"] == "alibi"
    return bundle


class Clock:
    """Unix time that moves only when the controller would wait (the canary's windows)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def run_controller(
    registry: Registry, kube: FakeKubeApi, prometheus_url: str, clock: Clock
) -> list[PassResult]:
    """Reconcile passes until the rollout the registry asks for is over; a fresh controller each
    pass (state lives in the registry and the InferenceService, as after restarts)."""
    passes: list[PassResult] = []
    for _ in range(20):
        reconciler = CanaryReconciler(
            registry=Registry.from_uri(registry.store.uri, MODEL),
            actuator=KServeActuator(KubeInferenceServiceApi(kube.client()), ISVC, NAMESPACE),
            prometheus=PrometheusClient(prometheus_url),
            policy=POLICY,
            clock=clock,
        )
        result = reconciler.reconcile()
        passes.append(result)
        if result.state in ("promoted", "rolled_back"):
            return passes
        if result.next_at is not None:
            clock.now = max(clock.now, result.next_at)
        else:
            clock.now += 5
    pytest.fail(f"the rollout did not finish: {[(p.state, p.message) for p in passes]}")


def judged_states(kube: FakeKubeApi, initial: dict[str, Any], since: int) -> list[tuple]:
    """Each patch from ``since`` on, judged by the kserve models; the canary state it produced."""
    current, states = initial, []
    for request in kube.patches()[since:]:
        assert request.content_type == MERGE_PATCH
        check_merge_patch(request.body)
        current = apply_merge_patch(current, request.body)
        build(current)  # the whole object, as the API server would store it
        states.append(tuple(vars(canary_state(current, "standard")).values()))
    assert current["spec"] == kube.get(NAMESPACE, ISVC)["spec"]
    return states


def test_drift_to_kfp_run_and_canary_promoted_or_rolled_back(tmp_path: Path) -> None:
    binaries = _binaries()
    bundle = drift_bundle(tmp_path)
    registry = Registry.from_uri((tmp_path / "registry").resolve().as_uri(), MODEL)
    registry.register_version(
        make_bundle(tmp_path / "v1", payload=b"v1"), actor="test", reason="first training"
    )
    registry.promote(1, actor="test", reason="first production")
    token_file = tmp_path / "trigger-token"
    token_file.write_text(TOKEN + "\n")

    with ExitStack() as stack:
        kfp = stack.enter_context(FakeKfpApi())
        pipeline_id, version_id = kfp.upload("continuous-training", APP_VERSION)
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
                    registry_uri=registry.store.uri,
                    model_name=MODEL,
                    launcher="kfp",
                    kfp_host=kfp.url,
                    kfp_pipeline_version=APP_VERSION,
                    port=0,
                ),
                tmp_path / "trigger.log",
            )
        )
        monitoring = stack.enter_context(
            running_monitoring(
                binaries,
                {"drift": drift.address, "trigger": trigger.address},
                token_file,
                tmp_path,
                drift_alert_for="1s",
                alert_timers={"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
                monitoring_dir=REPO / "monitoring",
            )
        )
        prometheus = monitoring["prometheus"].url

        # 1. Traffic like the reference is scored without drift; then drifted traffic.
        send_events(drift.url, generate_titles(WINDOW, seed=21), "1")

        def full_window() -> list[dict[str, Any]]:
            rows = httpx.get(f"{drift.url}/drift").json()
            return [r for r in rows if r["window_size"] == WINDOW and r["detectors"]]

        assert _wait("the first full window to be scored", full_window)[0]["is_drift"] is False
        drifted = generate_titles(
            WINDOW,
            seed=22,
            drift=DriftKnobs(vocabulary_shift=0.6, genre_prior_shift=1.0, text_length_scale=1.6),
        )
        send_events(drift.url, drifted, "1")

        # 2. Prometheus fires the repository's DriftDetected.
        def firing() -> list[dict[str, Any]]:
            alerts = httpx.get(f"{prometheus}/api/v1/alerts").json()["data"]["alerts"]
            return [
                a
                for a in alerts
                if a["labels"]["alertname"] == "DriftDetected" and a["state"] == "firing"
            ]

        fired = _wait("Prometheus to fire DriftDetected", firing)
        assert {a["labels"]["reason"] for a in fired} == {"drift"}

        # 3. Alertmanager -> trigger -> kfp.Client -> the KFP API: one run of the uploaded version.
        _wait("the trigger to start a KFP run", lambda: kfp.recorded("POST", "/runs"), 180)
        _wait(
            "the trigger to record the run",
            lambda: [e for e in registry.events() if e.kind == "retrain_started"],
        )

    (posted,) = kfp.recorded("POST", "/runs")
    run = as_model(posted.body, "V2beta1Run")
    assert run.pipeline_version_reference.pipeline_id == pipeline_id
    assert run.pipeline_version_reference.pipeline_version_id == version_id
    assert run.pipeline_spec is None  # the uploaded version, not inline IR
    assert run.experiment_id == kfp.experiments[0]["experiment_id"]
    parameters = run.runtime_config.parameters
    assert (parameters["model_name"], parameters["reason"], parameters["window"]) == (
        MODEL,
        "drift",
        "drift_selected",
    )
    assert 'alertname="DriftDetected"' in parameters["alert_group"]
    assert parameters["alert_group"] in run.display_name
    (started,) = [e for e in registry.events() if e.kind == "retrain_started"]
    assert started.reason == "drift" and started.details["run_id"] == kfp.runs[0]["run_id"]

    # 4-6. The run registers a canary; the controller picks it up and promotes it.
    with FakeKubeApi() as kube:
        initial = chart_inference_service("Standard", stable=1)
        kube.put(initial)
        clock = Clock()
        registry.register_version(
            make_bundle(tmp_path / "v2", payload=b"v2"),
            actor="continuous-training",
            reason="retrained: drift",
        )
        registry.set_canary(2, actor="continuous-training", reason="retrained: drift")
        with StubPrometheus({1: HEALTHY, 2: HEALTHY}) as evidence:
            healthy = run_controller(registry, kube, evidence.url, clock)
        assert healthy[-1].state == "promoted", [(p.state, p.message) for p in healthy]
        # stable v1 + canary v2 at 10 %, at 50 %, then v2 is the (named) stable predictor
        assert judged_states(kube, initial, 0) == [(1, 2, 10), (1, 2, 50), (2, None, 0)]
        assert registry.resolve("production") == 2 and registry.alias("canary") is None

        # The next run's model is broken: rolled back at its first step, v2 keeps all traffic.
        promoted, seen = kube.get(NAMESPACE, ISVC), len(kube.patches())
        registry.register_version(
            make_bundle(tmp_path / "v3", payload=b"v3"),
            actor="continuous-training",
            reason="retrained: drift",
        )
        registry.set_canary(3, actor="continuous-training", reason="retrained: drift")
        with StubPrometheus({2: HEALTHY, 3: BROKEN}) as evidence:
            broken = run_controller(registry, kube, evidence.url, clock)
        assert broken[-1].state == "rolled_back", [(p.state, p.message) for p in broken]
        assert judged_states(kube, promoted, seen) == [(2, 3, 10), (2, None, 0)]
        assert kube.get(NAMESPACE, ISVC)["spec"]["predictor"] == promoted["spec"]["predictor"]
        assert registry.resolve("production") == 2 and registry.alias("canary") is None
