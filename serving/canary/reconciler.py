"""One reconcile pass of the canary controller: read the state, take at most one step, record it.

The state lives in two places only, so a restarted controller picks up where it stopped:

- the registry: the ``canary`` alias says which version should be rolled out (its nonce names the
  rollout), ``production`` the version it is compared with, and the event log holds every step
  (``canary_traffic``: the share set and when) and every decision (``canary_decision``: the
  evidence, and what follows — the next step, promotion, rollback, or another window);
- the traffic itself: the live InferenceService (or the local router's split file), read back
  through the actuator on every pass.

A decision is written before it is carried out. A pass that finds a decision not carried out
(the controller stopped in between) carries it out; carrying out is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from serving.canary.actuators import TrafficActuator
from trending.monitoring.prom import PrometheusClient, PrometheusError, collect_snapshot
from trending.registry import CANARY, PRODUCTION, Event, Registry
from trending.rollout.canary import CanaryPolicy, Decision, MetricsSnapshot, decide, next_step
from trending.rollout.deploy import CanaryState

log = logging.getLogger("serving.canary")
ACTOR = "canary-controller"
DECISION_EVENT = "canary_decision"
TRAFFIC_EVENT = "canary_traffic"
RECONCILED_EVENT = "canary_reconciled"
# How many of the newest events a pass reads to find the current rollout's steps.
EVENT_HORIZON = 500

State = Literal["idle", "waiting", "stepped", "held", "promoted", "rolled_back"]
Outcome = Literal["step", "hold", "promoted", "rolled_back"]


class ControllerMetrics:
    """The controller's Prometheus metrics, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter(
            "trending_canary_decision_total",
            "Canary decisions.",
            ["model", "decision"],
            registry=self.registry,
        )
        self.traffic = Gauge(
            "trending_canary_traffic_percent",
            "Canary share of the traffic.",
            ["model"],
            registry=self.registry,
        )
        self.connected = Gauge(
            "trending_canary_controller_connected",
            "1 when the last call to the target succeeded, 0 when it failed (the controller "
            "retries with backoff).",
            ["target"],
            registry=self.registry,
        )
        self.last_pass = Gauge(
            "trending_canary_controller_last_pass_timestamp_seconds",
            "Unix time of the last reconcile pass that completed.",
            registry=self.registry,
        )


@dataclass
class PassResult:
    """What one pass found or did, and when the next pass has something to do."""

    state: State
    message: str
    version: int | None = None
    decision: Decision | None = None
    next_at: float | None = None  # None: nothing scheduled, poll at the usual interval


def _rollout_events(registry: Registry, rollout: str) -> list[Event]:
    """This rollout's traffic and decision events, oldest first."""
    return [
        e
        for e in registry.events(limit=EVENT_HORIZON)
        if e.kind in (TRAFFIC_EVENT, DECISION_EVENT) and e.details.get("rollout") == rollout
    ]


class CanaryReconciler:
    """Moves the rollout the registry's ``canary`` alias asks for one step per pass.

    Args:
        registry: The model's registry.
        actuator: Where traffic moves (the InferenceService or the local router's split).
        prometheus: Where the evidence comes from.
        policy: Steps, windows and thresholds.
        metrics: Controller metrics (a fresh registry when None).
        extra_labels: More Prometheus label matchers (e.g. ``{"job": "trending-router"}``).
        clock: Unix time now (injected by tests).
    """

    def __init__(
        self,
        *,
        registry: Registry,
        actuator: TrafficActuator,
        prometheus: PrometheusClient,
        policy: CanaryPolicy,
        metrics: ControllerMetrics | None = None,
        extra_labels: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry, self.actuator, self.prometheus = registry, actuator, prometheus
        self.policy, self.extra_labels, self.clock = policy, extra_labels, clock
        self.metrics = metrics or ControllerMetrics()
        self.model = registry.model_name

    # ------------------------------------------------------------------ the pass

    def reconcile(self) -> PassResult:
        """Look at the registry and the traffic; do what the rollout needs next (at most one step)."""
        alias = self.registry.alias(CANARY)
        state = self.actuator.observe()
        if alias is None or alias.version is None:
            return self._without_canary(state)
        version, rollout = alias.version, alias.nonce
        production = self.registry.alias(PRODUCTION)
        if production is None or production.version is None:
            return PassResult(
                "waiting",
                f"canary v{version} of {self.model} waits: no production version to compare "
                "with (promote one first: `trending registry promote`)",
                version,
            )
        stable = production.version
        events = _rollout_events(self.registry, rollout)
        decisions = [e for e in events if e.kind == DECISION_EVENT]
        last_decision = decisions[-1] if decisions else None
        if last_decision is not None and last_decision.details.get("outcome") == "rolled_back":
            return self._carry_out_rollback(version, state, last_decision.reason)
        if last_decision is not None and last_decision.details.get("outcome") == "promoted":
            return self._carry_out_promotion(version, state, last_decision.details)
        placed = self._place_traffic(version, stable, rollout, state, events)
        if placed is not None:
            return placed
        return self._measure(version, stable, rollout, state, events)

    # ------------------------------------------------------------------ traffic placement

    def _log_traffic(
        self, version: int, stable: int, rollout: str, percent: int, reason: str
    ) -> None:
        self.registry.log_event(
            TRAFFIC_EVENT,
            actor=ACTOR,
            reason=reason,
            version=version,
            details={
                "rollout": rollout,
                "percent": percent,
                "stable_version": stable,
                "started_at": self.clock(),
            },
        )
        self.metrics.traffic.labels(self.model).set(percent)
        log.info("canary v%s of %s: %s", version, self.model, reason)

    def _place_traffic(
        self, version: int, stable: int, rollout: str, state: CanaryState, events: list[Event]
    ) -> PassResult | None:
        """Make the traffic match the rollout's last step; None when it already does."""
        last = events[-1] if events else None
        traffic = [e for e in events if e.kind == TRAFFIC_EVENT]
        # A step decided but not yet carried out (or carried out but not yet recorded).
        pending = (
            int(last.details["next_percent"])
            if last is not None
            and last.kind == DECISION_EVENT
            and last.details.get("outcome") == "step"
            else None
        )
        wanted = (
            pending
            if pending is not None
            else (int(traffic[-1].details["percent"]) if traffic else self.policy.steps[0])
        )
        due = self.clock() + self.policy.settle_seconds + self.policy.window_seconds
        if state.canary_version != version:
            self.actuator.start_canary(version, wanted)
            self._log_traffic(
                version,
                stable,
                rollout,
                wanted,
                f"canary v{version} rolled out at {wanted}% (stable v{stable})",
            )
            return PassResult("stepped", f"v{version} at {wanted}%", version, next_at=due)
        if pending is not None:
            if state.canary_percent != pending:
                self.actuator.set_traffic(pending)
            self._log_traffic(
                version, stable, rollout, pending, f"canary v{version} stepped to {pending}%"
            )
            return PassResult("stepped", f"v{version} at {pending}%", version, next_at=due)
        if not traffic:
            # Put in place by someone else (`trending deploy`, the local stack): adopt it.
            percent = state.canary_percent or self.policy.steps[0]
            if percent != state.canary_percent:
                self.actuator.set_traffic(percent)
            self._log_traffic(
                version,
                stable,
                rollout,
                percent,
                f"canary v{version} found at {state.canary_percent}%, measuring at {percent}%",
            )
            return PassResult("stepped", f"v{version} at {percent}%", version, next_at=due)
        recorded = int(traffic[-1].details["percent"])
        if state.canary_percent != recorded:
            percent = state.canary_percent or recorded
            if percent != state.canary_percent:
                self.actuator.set_traffic(percent)
            self._log_traffic(
                version,
                stable,
                rollout,
                percent,
                f"canary v{version} share changed outside the controller "
                f"({recorded}% -> {state.canary_percent}%); measuring at {percent}%",
            )
            return PassResult("stepped", f"v{version} at {percent}%", version, next_at=due)
        return None

    # ------------------------------------------------------------------ measuring and deciding

    def _measure(
        self, version: int, stable: int, rollout: str, state: CanaryState, events: list[Event]
    ) -> PassResult:
        last_step = max(i for i, e in enumerate(events) if e.kind == TRAFFIC_EVENT)
        traffic = events[last_step]
        since = [e for e in events[last_step + 1 :] if e.kind == DECISION_EVENT]
        holds = sum(1 for e in since if e.details.get("outcome") == "hold")
        anchor = max(
            [float(traffic.details["started_at"])]
            + [float(e.details["decided_at"]) for e in since if "decided_at" in e.details]
        )
        due = anchor + self.policy.settle_seconds + self.policy.window_seconds
        now = self.clock()
        percent = state.canary_percent
        if now < due:
            return PassResult(
                "waiting",
                f"v{version} at {percent}%: window ends in {due - now:.0f} s",
                version,
                next_at=due,
            )
        snapshot = self._snapshot(stable, version, percent, now)
        decision = decide(self.policy, snapshot, holds_so_far=holds)
        outcome: Outcome
        following: int | None = None
        if decision.action == "rollback":
            outcome = "rolled_back"
        elif decision.action == "hold":
            outcome = "hold"
        else:
            following = next_step(self.policy, percent)
            outcome = "step" if following is not None else "promoted"
        # Written before it is carried out: a restart carries out what the log says.
        self.registry.log_event(
            DECISION_EVENT,
            actor=ACTOR,
            reason=decision.reason,
            version=version,
            details={
                "rollout": rollout,
                "stable_version": stable,
                "outcome": outcome,
                "next_percent": following,
                "holds": holds,
                "decided_at": now,
                **decision.evidence(snapshot, self.policy),
            },
        )
        self.metrics.decisions.labels(self.model, decision.action).inc()
        log.info("canary v%s at %d%%: %s — %s", version, percent, decision.action, decision.reason)
        if outcome == "rolled_back":
            result = self._carry_out_rollback(version, state, decision.reason)
        elif outcome == "promoted":
            result = self._carry_out_promotion(version, state, {"reason": decision.reason})
        elif outcome == "step":
            assert following is not None
            self.actuator.set_traffic(following)
            self._log_traffic(
                version,
                stable,
                rollout,
                following,
                f"canary v{version} passed {percent}%, stepped to {following}%",
            )
            result = PassResult(
                "stepped",
                f"v{version} at {following}%",
                version,
                next_at=now + self.policy.settle_seconds + self.policy.window_seconds,
            )
        else:
            result = PassResult(
                "held",
                decision.reason,
                version,
                next_at=now + self.policy.settle_seconds + self.policy.window_seconds,
            )
        result.decision = decision
        return result

    def _snapshot(self, stable: int, canary: int, percent: int, now: float) -> MetricsSnapshot:
        try:
            snapshot = collect_snapshot(
                self.prometheus,
                model=self.model,
                stable_version=stable,
                canary_version=canary,
                traffic_percent=percent,
                window_seconds=self.policy.window_seconds,
                at=now,
                extra_labels=self.extra_labels,
            )
        except PrometheusError as exc:
            # No evidence is a hold (and, after max_holds, a rollback), never a promotion.
            self.metrics.connected.labels("prometheus").set(0)
            log.warning("no evidence this window: %s", exc)
            return MetricsSnapshot.model_validate(
                {
                    "window_seconds": self.policy.window_seconds,
                    "traffic_percent": percent,
                    "stable": {"version": stable},
                    "canary": {"version": canary},
                }
            )
        self.metrics.connected.labels("prometheus").set(1)
        return snapshot

    # ------------------------------------------------------------------ carrying out

    def _carry_out_rollback(self, version: int, state: CanaryState, reason: str) -> PassResult:
        if state.canary_version == version:
            self.actuator.rollback()
        self.registry.clear_canary(actor=ACTOR, reason=f"v{version} rolled back: {reason}")
        self.metrics.traffic.labels(self.model).set(0)
        return PassResult("rolled_back", f"v{version} rolled back: {reason}", version)

    def _carry_out_promotion(
        self, version: int, state: CanaryState, details: dict[str, Any]
    ) -> PassResult:
        if state.canary_version == version:
            self.actuator.promote()
        self.registry.promote(
            version,
            actor=ACTOR,
            reason=f"canary passed every step {self.policy.steps}",
            evidence={"decision": details.get("reason", "")},
        )
        self.registry.clear_canary(actor=ACTOR, reason=f"version {version} promoted to production")
        self.metrics.traffic.labels(self.model).set(0)
        return PassResult("promoted", f"v{version} promoted to production", version)

    def _without_canary(self, state: CanaryState) -> PassResult:
        """No canary alias: idle, after removing a canary the alias no longer asks for."""
        self.metrics.traffic.labels(self.model).set(0)
        if state.canary_version is None:
            return PassResult(
                "idle",
                f"no canary: the registry's canary alias of {self.model} is not set; waiting for "
                "a continuous-training run or `trending deploy <version> --canary N`",
            )
        version = state.canary_version
        production = self.registry.alias(PRODUCTION)
        if production is not None and production.version == version:
            self.actuator.promote()
            what = f"v{version} is production in the registry: promoted in the traffic too"
        else:
            self.actuator.rollback()
            what = f"v{version} has no canary alias (cleared by hand?): its traffic was removed"
        self.registry.log_event(
            RECONCILED_EVENT,
            actor=ACTOR,
            reason=what,
            version=version,
            details={"canary_percent": state.canary_percent},
        )
        log.info("%s", what)
        return PassResult("idle", what, version)
