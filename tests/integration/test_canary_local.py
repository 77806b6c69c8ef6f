"""Local canary end to end: two real ModelServers, the router, REAL Prometheus, the controller.

A healthy canary is promoted step by step; a canary that rejects requests stable accepts is rolled
back; a canary that tags different genres (trained on rotated labels) is rolled back although its
errors and latency are fine. Every decision is in the registry event log with its evidence.
"""

from __future__ import annotations

import pytest
from fixtures.metrics import scrape

from cli.local_canary import TrafficGenerator, local_canary_stack
from cli.local_monitoring import prometheus_binary
from serving.canary.actuators import LocalSplitActuator
from serving.canary.controller import ControllerMetrics, run_canary
from serving.router.split import read_split
from trending.data.synthetic import generate_titles
from trending.genres import GenreVocabulary
from trending.modelling.training import split_labelled, train_bundle
from trending.monitoring.prom import PrometheusClient
from trending.registry import Registry
from trending.rollout.canary import CanaryPolicy

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="prometheus binary absent: apt-get install -y prometheus (Debian package)",
    ),
]
MODEL = "genre-classifier"
FAST = {"n_estimators": 25, "max_depth": 3, "max_features": 2000}
# Short windows for a loaded 2-CPU machine; thresholds as in production except the minimums.
# 10 s windows give each side enough genre labels that the divergence check's chance allowance
# leaves room between the healthy canary (~0.2 raw) and the rotated one (~0.4 raw).
POLICY = CanaryPolicy(
    steps=[25, 50],
    window_seconds=10,
    settle_seconds=1.5,
    min_requests=4,
    max_holds=6,
    min_genre_predictions=30,
    min_shadow_samples=5,
    max_genre_divergence=0.15,
    max_mean_score_shift=0.25,
    min_shadow_agreement=0.5,
    min_feedback_samples=10,
    max_feedback_accuracy_drop=0.2,
    # Latency on a shared, loaded 2-CPU box says nothing about a model: keep it from deciding.
    max_p95_latency_ratio=20,
    latency_slack_seconds=5,
)


def _rotate(genres: list[str], vocab: list[str]) -> list[str]:
    return [vocab[(vocab.index(g) + 5) % len(vocab)] for g in genres]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """stable, a healthy retrain, a faulty server of the same retrain, a rotated-label model."""
    root = tmp_path_factory.mktemp("canary")
    titles = generate_titles(500, seed=21)
    train, held_out = split_labelled(titles, test_size=0.2, seed=3)
    vocab = list(GenreVocabulary().genres)
    rotated = train.copy()
    rotated["genres"] = [_rotate(list(g), vocab) for g in rotated["genres"]]
    uri = (root / "registry").as_uri()
    registry = Registry.from_uri(uri, MODEL)
    versions = {}
    for name, frame, seed in (("stable", train, 7), ("healthy", train, 8), ("rotated", rotated, 7)):
        bundle = root / name
        train_bundle(frame, bundle, params=FAST, seed=seed)
        versions[name] = registry.register_version(bundle, actor="test", reason=f"{name} model")
    # The same healthy bundle once more, served by a faulty server (its own version label).
    versions["faulty"] = registry.register_version(root / "healthy", actor="test", reason="faulty")
    records = [
        {
            "title_id": r.title_id,
            "plot": r.plot,
            "reviews": list(r.reviews),
            "genres": list(r.genres),
        }
        for r in held_out.itertuples()
    ]
    with local_canary_stack(
        model=MODEL,
        registry_uri=uri,
        versions=list(versions.values()),
        workdir=root / "stack",
        max_instances={versions["faulty"]: 0},  # injected fault: rejects every request (4xx)
    ) as running:
        traffic = TrafficGenerator(
            running.router_url,
            MODEL,
            records,
            rate_per_second=20,
            batch=4,
            send_feedback=True,
            token=running.token,
        ).start()
        try:
            yield uri, versions, running, traffic
        finally:
            traffic.stop()


def _run(stack, stable_name, canary_name, *, shadow_percent=0):
    uri, v, running, _ = stack
    stable, canary = v[stable_name], v[canary_name]
    registry = Registry.from_uri(uri, MODEL)
    if registry.alias("production") is None or registry.resolve("production") != stable:
        registry.promote(stable, actor="test", reason="baseline for this test")
    registry.set_canary(canary, actor="test", reason="canary under test")
    running.route(stable, canary, shadow_percent=shadow_percent)
    metrics = ControllerMetrics()
    outcome = run_canary(
        registry=registry,
        actuator=LocalSplitActuator(running.split_file),
        prometheus=PrometheusClient(running.prometheus_url),
        policy=POLICY,
        metrics=metrics,
    )
    return registry, outcome, read_split(running.split_file), metrics


def _decision_events(registry: Registry, canary: int) -> list:
    return [e for e in registry.events() if e.kind == "canary_decision" and e.version == canary]


def _check(decision, name):
    return next(c for c in decision.checks if c.name == name)


def test_healthy_canary_is_promoted_step_by_step(stack):
    v, traffic = stack[1], stack[3]
    registry, outcome, split, metrics = _run(stack, "stable", "healthy", shadow_percent=50)
    assert outcome.result == "promoted", [d.reason for d in outcome.decisions]
    promotes = [d for d in outcome.decisions if d.action == "promote"]
    assert [d.traffic_percent for d in promotes] == POLICY.steps
    assert registry.resolve("production") == v["healthy"]
    assert registry.alias("canary") is None
    assert split.stable.version == v["healthy"] and split.canary is None
    events = _decision_events(registry, v["healthy"])
    assert len(events) == len(outcome.decisions)
    first = events[0].details
    assert first["stable_version"] == v["stable"]
    assert first["snapshot"]["canary"]["requests"] > 0
    assert {c["name"] for c in first["checks"]} >= {"error_rate", "p95_latency", "genre_divergence"}
    assert all("threshold" in c and "value" in c for c in first["checks"])
    assert metrics.decisions.labels(MODEL, "promote")._value.get() == len(promotes)
    assert traffic.status_codes.get(200, 0) > 0
    router = scrape(stack[2].router_url)
    # The generator's feedback carried the router's bearer token: counted, none refused.
    assert sum(v for (name, _), v in router.items() if name == "trending_feedback_jaccard_count")
    refused = [
        (dict(labels), v)
        for (name, labels), v in router.items()
        if name == "trending_router_refused_total"
    ]
    assert not [v for labels, v in refused if labels["reason"] == "unauthenticated" and v]


def test_canary_with_errors_is_rolled_back(stack):
    v = stack[1]
    # Injected fault: the "faulty" server runs with a batch limit of 0, so it rejects every
    # request (4xx) that stable answers with 200 — a regression only the canary has.
    registry, outcome, split, _ = _run(stack, "stable", "faulty")
    assert outcome.result == "rolled_back"
    last = outcome.decisions[-1]
    assert last.action == "rollback" and last.traffic_percent == POLICY.steps[0]
    assert _check(last, "error_rate").status == "fail"
    assert registry.resolve("production") == v["stable"]
    assert registry.alias("canary") is None
    assert split.canary is None and split.canary_percent == 0
    events = _decision_events(registry, v["faulty"])
    assert events[-1].details["action"] == "rollback"
    assert events[-1].details["snapshot"]["canary"]["errors"] > 0
    assert any(e.kind == "canary_stop" for e in registry.events())


def test_canary_with_diverging_genres_is_rolled_back_despite_good_ops(stack):
    v = stack[1]
    registry, outcome, _, _ = _run(stack, "stable", "rotated")
    assert outcome.result == "rolled_back", [d.reason for d in outcome.decisions]
    last = outcome.decisions[-1]
    assert _check(last, "genre_divergence").status == "fail"
    assert _check(last, "error_rate").status == "pass"
    assert _check(last, "p95_latency").status in {"pass", "skipped"}
    assert registry.resolve("production") == v["stable"]
    event = _decision_events(registry, v["rotated"])[-1]
    divergence = next(c for c in event.details["checks"] if c["name"] == "genre_divergence")
    assert divergence["value"] > divergence["threshold"]
