"""The canary controller against a recording Kubernetes API and a stub Prometheus.

The InferenceService is the one the chart renders (tests/fixtures/chart.py); every PATCH the
controller sends goes through the real ``kubernetes`` client to tests/fakes/kube_api.py (the one
documented emulation of the API server), and every patch body and every object it produces is
judged by the kserve SDK models. Time is a fake clock, so windows pass without sleeping.
"""

from __future__ import annotations

import pytest
from fakes.kube_api import MERGE_PATCH, FakeKubeApi, apply_merge_patch
from fakes.prometheus_api import StubPrometheus, VersionNumbers
from fastapi.testclient import TestClient
from fixtures.bundles import make_bundle
from fixtures.chart import NAMESPACE, chart_inference_service
from fixtures.kserve_models import build, check_merge_patch

from serving.canary.actuators import KServeActuator
from serving.canary.app import create_app
from serving.canary.controller import ControllerLoop, run_canary
from serving.canary.kube import KubeInferenceServiceApi
from serving.canary.reconciler import (
    DECISION_EVENT,
    RECONCILED_EVENT,
    TRAFFIC_EVENT,
    CanaryReconciler,
    ControllerMetrics,
)
from trending.monitoring.prom import PrometheusClient
from trending.registry import Registry
from trending.rollout.canary import CanaryPolicy
from trending.rollout.deploy import canary_state, normalise_mode, pinned_version

MODEL = "genre-classifier"
ISVC = "genre-classifier"
POLICY = CanaryPolicy(steps=[10, 50], window_seconds=60, settle_seconds=5, min_requests=100)
HEALTHY = VersionNumbers()
BROKEN = VersionNumbers(errors=120.0)  # 30 % of the canary's requests fail


class Clock:
    """Unix time that moves only when the controller waits."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def registry(tmp_path):
    reg = Registry.from_uri((tmp_path / "registry").as_uri(), MODEL)
    for n in (1, 2):
        reg.register_version(
            make_bundle(tmp_path, payload=f"v{n}".encode()), actor="test", reason=f"version {n}"
        )
    reg.promote(1, actor="test", reason="first production")
    return reg


def _world(mode: str, canary_numbers: VersionNumbers, *, canary: int | None = None):
    kube = FakeKubeApi().__enter__()
    kube.put(chart_inference_service(mode, stable=1, canary=canary))
    prom = StubPrometheus({1: HEALTHY, 2: canary_numbers}).__enter__()
    return kube, prom


def _reconciler(
    registry: Registry,
    kube: FakeKubeApi,
    prom: StubPrometheus,
    clock: Clock,
    actuator_class=KServeActuator,
) -> CanaryReconciler:
    """A controller built from nothing but its settings, as after a restart."""
    api = KubeInferenceServiceApi(kube.client())
    return CanaryReconciler(
        registry=Registry.from_uri(registry.store.uri, MODEL),
        actuator=actuator_class(api, ISVC, NAMESPACE),
        prometheus=PrometheusClient(prom.url),
        policy=POLICY,
        clock=clock,
    )


def _replayed(kube: FakeKubeApi, initial: dict) -> list[dict]:
    """Every object the patches produced, each judged by the kserve models, with each patch."""
    objects, current = [], initial
    for request in kube.patches():
        assert request.content_type == MERGE_PATCH
        assert request.query.get("fieldManager") == ["trending-canary"]
        check_merge_patch(request.body)
        current = apply_merge_patch(current, request.body)
        build(current)
        objects.append(current)
    assert objects[-1]["spec"] == kube.get(NAMESPACE, ISVC)["spec"]
    return objects


def _states(objects: list[dict], mode: str) -> list[tuple]:
    m = normalise_mode(mode)
    return [tuple(vars(canary_state(o, m)).values()) for o in objects]


@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_healthy_canary_is_stepped_then_promoted(registry, mode):
    kube, prom = _world(mode, HEALTHY)
    clock = Clock()
    initial = kube.get(NAMESPACE, ISVC)
    registry.set_canary(2, actor="ct-pipeline", reason="retrained")
    try:
        reconciler = _reconciler(registry, kube, prom, clock)
        outcome = run_canary(
            registry=reconciler.registry,
            actuator=reconciler.actuator,
            prometheus=reconciler.prometheus,
            policy=POLICY,
            clock=clock,
            sleep=clock.sleep,
        )
    finally:
        kube.__exit__()
        prom.__exit__()
    assert outcome.result == "promoted", [d.reason for d in outcome.decisions]
    assert [d.action for d in outcome.decisions] == ["promote", "promote"]
    objects = _replayed(kube, initial)
    if mode == "Standard":
        # stable v1 + canary v2 at 10 %, at 50 %, then v2 the (named) stable predictor
        assert _states(objects, mode) == [(1, 2, 10), (1, 2, 50), (2, None, 0)]
        assert objects[-1]["spec"]["predictor"]["name"] == "v2"
    else:
        # a new revision pinned to v2 takes 10 %, 50 %, then all traffic
        assert _states(objects, mode) == [(None, 2, 10), (None, 2, 50), (2, None, 0)]
    final = objects[-1]["spec"]["predictor"]
    assert pinned_version(final) == 2 and final["labels"]["trending.dev/track"] == "stable"
    # Only the canary fields changed: the chart's container (image, env, resources) is intact.
    before, after = initial["spec"]["predictor"]["containers"][0], final["containers"][0]
    assert {k: v for k, v in after.items() if k != "args"} == {
        k: v for k, v in before.items() if k != "args"
    }
    assert registry.resolve("production") == 2 and registry.alias("canary") is None
    kinds = [e.kind for e in registry.events() if e.version == 2]
    assert kinds.count(DECISION_EVENT) == 2 and kinds.count(TRAFFIC_EVENT) == 2
    assert kinds[-2:] == ["promote", "canary_stop"]


@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_broken_canary_is_rolled_back_at_the_first_step(registry, mode):
    kube, prom = _world(mode, BROKEN)
    clock = Clock()
    initial = kube.get(NAMESPACE, ISVC)
    registry.set_canary(2, actor="ct-pipeline", reason="retrained")
    try:
        r = _reconciler(registry, kube, prom, clock)
        outcome = run_canary(
            registry=r.registry,
            actuator=r.actuator,
            prometheus=r.prometheus,
            policy=POLICY,
            clock=clock,
            sleep=clock.sleep,
        )
    finally:
        kube.__exit__()
        prom.__exit__()
    assert outcome.result == "rolled_back"
    failed = {c.name for c in outcome.decisions[-1].checks if c.status == "fail"}
    assert "error_rate" in failed
    objects = _replayed(kube, initial)
    if mode == "Standard":
        assert _states(objects, mode) == [(1, 2, 10), (1, None, 0)]
        assert "canary" not in objects[-1]["spec"]
        assert objects[-1]["spec"]["predictor"] == initial["spec"]["predictor"]
    else:
        # canaryTrafficPercent 0: the previous revision (v1) takes all traffic at once
        assert _states(objects, mode) == [(None, 2, 10), (2, None, 0)]
        assert objects[-1]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert registry.resolve("production") == 1 and registry.alias("canary") is None
    decision = [e for e in registry.events() if e.kind == DECISION_EVENT][-1]
    assert decision.details["outcome"] == "rolled_back"
    assert decision.details["snapshot"]["canary"]["errors"] == BROKEN.errors


class _DiesOnStep(KServeActuator):
    """The process dies after the decision was written, before traffic moved."""

    def set_traffic(self, percent: int) -> None:
        raise SystemExit("killed")


def test_a_restarted_controller_picks_up_where_it_stopped(registry):
    kube, prom = _world("Standard", HEALTHY)
    clock = Clock()
    registry.set_canary(2, actor="ct-pipeline", reason="retrained")
    try:
        first = _reconciler(registry, kube, prom, clock).reconcile()
        assert (
            first.state == "stepped"
            and canary_state(kube.get(NAMESPACE, ISVC), "standard").canary_percent == 10
        )
        # Restart: a new controller waits out the same window (it ends where the first said).
        clock.now = first.next_at - 1
        assert _reconciler(registry, kube, prom, clock).reconcile().state == "waiting"
        clock.now = first.next_at
        with pytest.raises(SystemExit):
            _reconciler(registry, kube, prom, clock, _DiesOnStep).reconcile()
        assert canary_state(kube.get(NAMESPACE, ISVC), "standard").canary_percent == 10
        # The next controller carries out the recorded decision instead of measuring again.
        resumed = _reconciler(registry, kube, prom, clock).reconcile()
        assert resumed.state == "stepped" and resumed.decision is None
        assert canary_state(kube.get(NAMESPACE, ISVC), "standard").canary_percent == 50
        clock.now = resumed.next_at
        last = _reconciler(registry, kube, prom, clock).reconcile()
    finally:
        kube.__exit__()
        prom.__exit__()
    assert last.state == "promoted"
    decisions = [e for e in registry.events() if e.kind == DECISION_EVENT]
    assert [(d.details["traffic_percent"], d.details["outcome"]) for d in decisions] == [
        (10, "step"),
        (50, "promoted"),
    ]
    assert registry.resolve("production") == 2


def test_idle_without_a_canary_only_reads(registry):
    kube, prom = _world("Standard", HEALTHY)
    try:
        result = _reconciler(registry, kube, prom, Clock()).reconcile()
    finally:
        kube.__exit__()
        prom.__exit__()
    assert result.state == "idle" and "canary alias" in result.message
    assert {r.method for r in kube.requests} == {"GET"} and prom.queries == []


@pytest.mark.parametrize(("production", "expected"), [(1, (1, None, 0)), (2, (2, None, 0))])
def test_a_canary_whose_alias_was_cleared_by_hand_is_settled(registry, production, expected):
    """`trending canary rollback|promote` move only aliases; the controller makes traffic follow."""
    kube, prom = _world("Standard", HEALTHY, canary=2)
    registry.promote(production, actor="operator", reason="by hand")
    try:
        result = _reconciler(registry, kube, prom, Clock()).reconcile()
        live = kube.get(NAMESPACE, ISVC)
    finally:
        kube.__exit__()
        prom.__exit__()
    assert result.state == "idle"
    assert tuple(vars(canary_state(live, "standard")).values()) == expected
    build(live)
    assert [e.kind for e in registry.events()][-1] == RECONCILED_EVENT


def test_without_a_kubernetes_api_the_controller_stays_up_and_says_why(registry):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nothing listens on the discard port
    configuration.retries = 0
    metrics = ControllerMetrics()

    def build_reconciler() -> CanaryReconciler:
        api = KubeInferenceServiceApi(client.ApiClient(configuration), request_timeout=2)
        return CanaryReconciler(
            registry=registry,
            actuator=KServeActuator(api, ISVC, NAMESPACE),
            prometheus=PrometheusClient("http://127.0.0.1:9"),
            policy=POLICY,
            metrics=metrics,
        )

    loop = ControllerLoop(build_reconciler, metrics, interval_seconds=5, max_backoff_seconds=15)
    waits = [loop.run_pass() for _ in range(4)]
    assert waits == [5, 10, 15, 15]  # exponential backoff, capped
    app = TestClient(create_app(loop.status, metrics.registry, stale_after_seconds=60))
    assert app.get("/healthz").status_code == 200
    ready = app.get("/readyz")
    assert ready.status_code == 503 and "cannot reach the Kubernetes API" in ready.text
    assert (
        'trending_canary_controller_connected{target="kubernetes"} 0.0' in app.get("/metrics").text
    )
