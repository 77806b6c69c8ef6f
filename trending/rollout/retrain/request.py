"""The retrain vocabulary and requests: why a run is wanted, which data it learns from, outcome.

The one home of the reasons (:data:`RETRAIN_REASONS`); the data windows are
:data:`trending.data.windows.WINDOW_KINDS`. The alert rules (tests/unit/test_rules.py), the
trigger's webhook and the pipeline's first step (:mod:`.run_events`) check against these.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from trending.data.windows import WindowKind
from trending.registry import PRODUCTION, Registry

RetrainReason = Literal["drift", "schedule", "data_volume", "performance"]
RETRAIN_REASONS: tuple[RetrainReason, ...] = get_args(RetrainReason)

# Which training data each reason calls for: drift -> emphasise the recent, drifted data;
# performance -> a fixed recent window (old labels may be wrong now); schedule and new data ->
# everything so far.
DEFAULT_WINDOW: dict[RetrainReason, WindowKind] = {
    "drift": "drift_selected",
    "performance": "fixed",
    "schedule": "growing",
    "data_volume": "growing",
}


class RetrainError(RuntimeError):
    """A retraining run that could not be requested or launched; the message says why."""


class RetrainRequest(BaseModel):
    """What to retrain and why."""

    model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    reason: RetrainReason
    window: WindowKind
    actor: str = "retrain-trigger"
    evidence: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def for_reason(
        cls,
        model_name: str,
        reason: RetrainReason,
        *,
        window: WindowKind | None = None,
        actor: str = "retrain-trigger",
        evidence: dict[str, Any] | None = None,
    ) -> RetrainRequest:
        """A request with the default data window of ``reason`` unless one is given."""
        return cls(
            model_name=model_name,
            reason=reason,
            window=window or DEFAULT_WINDOW[reason],
            actor=actor,
            evidence=evidence or {},
        )


class RetrainDecision(BaseModel):
    """What happened to one request."""

    model_name: str
    status: Literal["started", "suppressed", "failed"]
    reason: RetrainReason
    window: WindowKind
    run_id: str | None = None
    detail: str = ""


def scheduled_requests(
    registry: Registry,
    *,
    now: datetime | None = None,
    max_model_age: timedelta | None = None,
    snapshots: Any | None = None,
    min_new_rows: int | None = None,
) -> list[RetrainRequest]:
    """Requests the schedule and the data volume call for right now (at most one per reason).

    Args:
        registry: The model's registry.
        now: The current time (tests).
        max_model_age: Retrain when production was registered longer ago than this.
        snapshots: A ``trending.data.snapshots.SnapshotStore`` for the data-volume check.
        min_new_rows: Retrain when the newest snapshot has this many more accepted rows than
            the snapshot production was trained on.
    """
    from trending.monitoring.signals import model_ages, new_rows_since_training

    now = now or datetime.now(UTC)
    requests = []
    if max_model_age is not None:
        age = model_ages(registry, now=now).get(PRODUCTION)
        if age is not None and age > max_model_age.total_seconds():
            requests.append(
                RetrainRequest.for_reason(
                    registry.model_name,
                    "schedule",
                    evidence={
                        "model_age_seconds": round(age),
                        "max_age_seconds": max_model_age.total_seconds(),
                    },
                )
            )
    if snapshots is not None and min_new_rows is not None:
        new_rows = new_rows_since_training(registry, snapshots)
        if new_rows is not None and new_rows >= min_new_rows:
            requests.append(
                RetrainRequest.for_reason(
                    registry.model_name,
                    "data_volume",
                    evidence={"new_rows": new_rows, "min_new_rows": min_new_rows},
                )
            )
    return requests


def describe(decision: RetrainDecision) -> str:
    """One line for logs."""
    return json.dumps(decision.model_dump())
