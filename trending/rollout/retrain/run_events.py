"""The continuous-training run's bookends in the event log: why it ran, what it changed."""

from __future__ import annotations

from typing import Any

from trending.data.windows import WINDOW_KINDS
from trending.modelling.runs import RunLog
from trending.registry import Registry
from trending.rollout.retrain.request import RETRAIN_REASONS


def start_retraining(
    registry_uri: str,
    model_name: str,
    *,
    reason: str,
    window: str,
    days: int = 90,
    since: str | None = None,
    actor: str,
) -> dict[str, Any]:
    """Check the request, log ``retrain_started``, return the ``window`` source parameters."""
    if reason not in RETRAIN_REASONS:
        raise ValueError(
            f"unknown retraining reason {reason!r}: choose one of {list(RETRAIN_REASONS)}"
        )
    if window not in WINDOW_KINDS:
        raise ValueError(f"unknown window {window!r}: choose one of {list(WINDOW_KINDS)}")
    params: dict[str, Any] = {"kind": window, "days": days, **({"since": since} if since else {})}
    registry = Registry.from_uri(registry_uri, model_name)
    production = registry.alias("production")
    registry.log_event(
        "retrain_started",
        actor=actor,
        reason=reason,
        details={
            "window": params,
            "production_version": production.version if production else None,
        },
    )
    return params


def finish_retraining(
    registry_uri: str, model_name: str, *, reason: str, run_id: str, actor: str
) -> str:
    """Log ``retrain_finished`` with the candidate's and production's metrics; return the outcome."""
    registry = Registry.from_uri(registry_uri, model_name)
    run = RunLog.from_uri(registry_uri, model_name).get(run_id)
    if run.registered_version is None:
        outcome = "kept-production"
    elif registry.resolve("production") == run.registered_version:
        outcome = "promoted"
    else:
        outcome = "deployed-as-canary"
    registry.log_event(
        "retrain_finished",
        actor=actor,
        reason=reason,
        version=run.registered_version,
        details={
            "run_id": run_id,
            "outcome": outcome,
            "champion": run.champion,
            "status": run.status,
            "comparison": run.metrics,
            "gate": run.notes,
        },
    )
    return outcome
