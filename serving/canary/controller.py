"""Driving the reconciler: forever as a service (``ControllerLoop``), or one canary to its end.

``ControllerLoop`` is what ``python -m serving.canary`` runs: a pass, then a wait until the next
pass has something to do (a window ending) or the poll interval, whichever is sooner. A pass that
cannot reach the Kubernetes API or the registry is retried with exponential backoff; the
controller never exits for that, it reports it (``/readyz``, ``trending_canary_controller_connected``)
and says why in its log.

``run_canary`` drives one canary to promotion or rollback in the foreground, for the local demo
and ``trending`` (it uses the same reconciler, so the local router and KServe follow one logic).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from serving.canary.actuators import TrafficActuator
from serving.canary.kube import InferenceServiceNotFoundError, KubeUnavailableError
from serving.canary.reconciler import CanaryReconciler, ControllerMetrics, PassResult
from trending.monitoring.prom import PrometheusClient
from trending.registry import CANARY, PRODUCTION, Registry
from trending.rollout.canary import CanaryPolicy, CanaryPolicyError, Decision
from trending.rollout.deploy import DeployError

log = logging.getLogger("serving.canary")

__all__ = ["CanaryOutcome", "ControllerLoop", "ControllerMetrics", "LoopStatus", "run_canary"]


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
    clock: Callable[[], float] = time.time,
) -> CanaryOutcome:
    """Drive the canary the registry's ``canary`` alias names to promotion or rollback.

    Every decision is appended to the registry event log (kind ``canary_decision``, details =
    the evidence) and counted in ``metrics``. Promotion moves the ``production`` alias to the
    canary and clears ``canary``; rollback sends all traffic back at once and clears ``canary``.

    Args:
        registry: The model's registry (its ``canary`` alias must be set).
        actuator: Where traffic moves (local router split file or the InferenceService).
        prometheus: Where the evidence comes from.
        policy: Steps, windows and thresholds.
        stable_version: Checked against the ``production`` alias when given.
        canary_version: Checked against the ``canary`` alias when given.
        metrics: Controller metrics to update (a fresh registry when None).
        extra_labels: More Prometheus label matchers (e.g. ``{"job": "trending-router"}``).
        sleep: Injected for tests of the loop logic.
        clock: Unix time now, injected with ``sleep``.

    Returns:
        The outcome with every decision.

    Raises:
        DeployError: The aliases do not name the versions given, or the canary alias is
            cleared by someone else while the canary runs.
    """
    canary = registry.alias(CANARY)
    production = registry.alias(PRODUCTION)
    if canary is None or (canary_version is not None and canary.version != canary_version):
        raise DeployError(
            f"the canary alias of {registry.model_name} names "
            f"{f'v{canary.version}' if canary else 'nothing'}"
            f"{f', not v{canary_version}' if canary_version is not None else ''}; set it first "
            "(`trending deploy <version> --canary N`)"
        )
    if production is None or (stable_version is not None and production.version != stable_version):
        raise DeployError(
            f"production of {registry.model_name} is "
            f"{f'v{production.version}' if production else 'not set'}"
            f"{f', not v{stable_version}' if stable_version is not None else ''}"
        )
    assert canary.version is not None and production.version is not None
    reconciler = CanaryReconciler(
        registry=registry,
        actuator=actuator,
        prometheus=prometheus,
        policy=policy,
        metrics=metrics,
        extra_labels=extra_labels,
        clock=clock,
    )
    outcome = CanaryOutcome("", production.version, canary.version)
    while True:
        result = reconciler.reconcile()
        if result.decision is not None:
            outcome.decisions.append(result.decision)
        if result.state in ("promoted", "rolled_back") and result.version == canary.version:
            outcome.result = result.state
            return outcome
        if result.state == "idle":
            raise DeployError(
                f"the canary v{canary.version} stopped outside this run: {result.message}"
            )
        sleep(max(0.0, result.next_at - clock()) if result.next_at is not None else 1.0)


@dataclass
class LoopStatus:
    """What ``/healthz`` and ``/readyz`` report."""

    ready: bool = False
    message: str = "starting"
    heartbeat: float = field(default_factory=time.time)


class ControllerLoop:
    """Reconcile forever: wait for the next window or the poll interval; back off on failures.

    Args:
        build: Makes the reconciler (connects to Kubernetes); retried until it succeeds.
        metrics: The controller's metrics (connected gauges, last pass).
        interval_seconds: Longest wait between passes.
        max_backoff_seconds: Longest wait after failures (doubling from ``interval_seconds``).
        clock: Unix time now.
    """

    def __init__(
        self,
        build: Callable[[], CanaryReconciler],
        metrics: ControllerMetrics,
        *,
        interval_seconds: float = 15.0,
        max_backoff_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.build, self.metrics, self.clock = build, metrics, clock
        self.interval, self.max_backoff = interval_seconds, max_backoff_seconds
        self.status = LoopStatus(heartbeat=clock())
        self.reconciler: CanaryReconciler | None = None
        self._backoff = interval_seconds
        self._said = ""

    def _say(self, message: str, level: int = logging.INFO) -> None:
        """Log a message once, not on every pass."""
        if message != self._said:
            log.log(level, "%s", message)
            self._said = message

    def _failed(self, target: str, message: str) -> float:
        self.metrics.connected.labels(target).set(0)
        wait = self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff)
        self.status.ready, self.status.message = False, f"not connected to {target}: {message}"
        self._say(
            f"{self.status.message}; retrying (backoff up to {self.max_backoff:.0f} s)",
            logging.WARNING,
        )
        return wait

    def run_pass(self) -> float:
        """One pass; returns how long to wait before the next."""
        self.status.heartbeat = self.clock()
        try:
            if self.reconciler is None:
                self.reconciler = self.build()
            result: PassResult = self.reconciler.reconcile()
        except KubeUnavailableError as exc:
            return self._failed("kubernetes", str(exc))
        except InferenceServiceNotFoundError as exc:
            self.metrics.connected.labels("kubernetes").set(1)
            self.metrics.connected.labels("registry").set(1)
            self.status.ready, self.status.message = True, f"waiting: {exc}"
            self._say(self.status.message)
            return self.interval
        except (DeployError, CanaryPolicyError) as exc:
            # The object or the policy needs a person (e.g. an unpinned predictor): say so, retry.
            self.status.ready, self.status.message = False, f"cannot proceed: {exc}"
            self._say(self.status.message, logging.ERROR)
            return self.max_backoff
        except Exception as exc:
            return self._failed("registry", f"{type(exc).__name__}: {exc}")
        self._backoff = self.interval
        self.metrics.connected.labels("kubernetes").set(1)
        self.metrics.connected.labels("registry").set(1)
        self.metrics.last_pass.set(self.clock())
        self.status.ready, self.status.message = True, f"{result.state}: {result.message}"
        self._say(self.status.message)
        if result.next_at is None:
            return self.interval
        return min(self.interval, max(0.0, result.next_at - self.clock()))

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set."""
        while not stop.is_set():
            stop.wait(self.run_pass())
