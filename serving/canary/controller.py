"""The canary loop: step traffic, wait a window, measure, decide, record, act."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from serving.canary.actuators import TrafficActuator
from trending.monitoring.prom import PrometheusClient, PrometheusError, collect_snapshot
from trending.registry import Registry
from trending.rollout.canary import CanaryPolicy, Decision, MetricsSnapshot, decide, next_step

log = logging.getLogger("trending.rollout.canary")
ACTOR = "canary-controller"


class ControllerMetrics:
    """``trending_canary_decision_total`` and ``trending_canary_traffic_percent`` by model."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter(
            "trending_canary_decision_total", "Canary decisions.", ["model", "decision"],
            registry=self.registry,
        )  # fmt: skip
        self.traffic = Gauge(
            "trending_canary_traffic_percent", "Canary share of the traffic.", ["model"],
            registry=self.registry,
        )  # fmt: skip


@dataclass
class CanaryOutcome:
    """How a canary run ended and every decision on the way."""

    result: str  # "promoted" | "rolled_back"
    stable_version: int
    canary_version: int
    decisions: list[Decision] = field(default_factory=list)


def run_canary(
    *,
    registry: Registry,
    actuator: TrafficActuator,
    prometheus: PrometheusClient,
    policy: CanaryPolicy,
    stable_version: int | None = None,
    canary_version: int | None = None,
    metrics: ControllerMetrics | None = None,
    extra_labels: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CanaryOutcome:
    """Drive one canary from its first traffic step to promotion or rollback.

    Every decision is appended to the registry event log (kind ``canary_decision``, details =
    the evidence) and counted in ``metrics``. Promotion moves the ``production`` alias to the
    canary and clears ``canary``; rollback sends all traffic back at once and clears ``canary``.

    Args:
        registry: The model's registry (stable = ``production``, canary = ``canary`` by default).
        actuator: Where traffic moves (local router split file or the InferenceService).
        prometheus: Where the evidence comes from.
        policy: Steps, windows and thresholds.
        stable_version: Defaults to the ``production`` alias.
        canary_version: Defaults to the ``canary`` alias.
        metrics: Controller metrics to update (a fresh registry when None).
        extra_labels: More Prometheus label matchers (e.g. ``{"job": "trending-router"}``).
        sleep: Injected for tests of the loop logic.

    Returns:
        The outcome with every decision.
    """
    model = registry.model_name
    stable = stable_version if stable_version is not None else registry.resolve("production")
    canary = canary_version if canary_version is not None else registry.resolve("canary")
    metrics = metrics or ControllerMetrics()
    outcome = CanaryOutcome(result="", stable_version=stable, canary_version=canary)
    percent: int | None = policy.steps[0]
    holds = 0
    while percent is not None:
        actuator.set_traffic(percent)
        metrics.traffic.labels(model).set(percent)
        log.info("canary %s of %s at %d%%", canary, model, percent)
        sleep(policy.settle_seconds + policy.window_seconds)
        try:
            snapshot = collect_snapshot(
                prometheus, model=model, stable_version=stable, canary_version=canary,
                traffic_percent=percent, window_seconds=policy.window_seconds,
                extra_labels=extra_labels,
            )  # fmt: skip
        except PrometheusError as exc:
            snapshot = MetricsSnapshot.model_validate(
                {"window_seconds": policy.window_seconds, "traffic_percent": percent,
                 "stable": {"version": stable}, "canary": {"version": canary}}
            )  # fmt: skip
            log.warning("no evidence this window: %s", exc)
        decision = decide(policy, snapshot, holds_so_far=holds)
        outcome.decisions.append(decision)
        metrics.decisions.labels(model, decision.action).inc()
        registry.log_event(
            "canary_decision",
            actor=ACTOR,
            reason=decision.reason,
            version=canary,
            details={"stable_version": stable, **decision.evidence(snapshot, policy)},
        )
        log.info("canary %s at %d%%: %s — %s", canary, percent, decision.action, decision.reason)
        if decision.action == "rollback":
            actuator.rollback()
            metrics.traffic.labels(model).set(0)
            registry.clear_canary(
                actor=ACTOR, reason=f"rolled back at {percent}%: {decision.reason}"
            )
            outcome.result = "rolled_back"
            return outcome
        if decision.action == "hold":
            holds += 1
            continue
        holds = 0
        following = next_step(policy, percent)
        if following is None:
            actuator.promote()
            registry.promote(
                canary, actor=ACTOR, reason=f"canary passed every step {policy.steps}",
                evidence={"decisions": [d.model_dump() for d in outcome.decisions]},
            )  # fmt: skip
            registry.clear_canary(actor=ACTOR, reason=f"version {canary} promoted to production")
            metrics.traffic.labels(model).set(0)
            outcome.result = "promoted"
            return outcome
        percent = following
    raise AssertionError("unreachable: passing the last step returns")  # pragma: no cover
