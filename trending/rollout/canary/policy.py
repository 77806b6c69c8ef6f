"""The canary policy and its decisions: a metrics snapshot in, promote / hold / roll back out.

The controller (``serving.canary``) measures stable and canary over a window
(``trending.monitoring.prom``), hands the snapshot to :func:`decide`, writes the decision with
every number behind it to the registry event log, and moves traffic. Nothing here does I/O except
:func:`load_policy`.

A check without enough data is ``skipped`` (recorded as such); too few canary requests makes the
whole step ``hold``; a failed check means ``rollback``; all passing means ``promote`` (the next
traffic step, or full promotion after the last one).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trending.rollout.canary.checks import CHECK_NAMES, Check, MetricsSnapshot, run_checks

Action = Literal["promote", "hold", "rollback"]


class CanaryPolicyError(ValueError):
    """The canary policy file is missing, unreadable or invalid; the message says what to fix."""


class CanaryPolicy(BaseModel):
    """When a canary moves forward, waits, or is rolled back. Defaults suit a production service."""

    model_config = ConfigDict(extra="forbid")

    steps: list[int] = Field(
        default_factory=lambda: [10, 25, 50],
        description=(
            "Canary traffic percentages to measure at, strictly increasing, each below 100; "
            "passing the last one promotes the canary to 100 % (at 100 % no stable traffic is "
            "left to compare with)."
        ),
    )
    required_checks: list[str] = Field(
        default_factory=lambda: ["error_rate", "p95_latency", "genre_divergence"],
        description="Checks that must have data: skipped means hold, never promote.",
    )
    window_seconds: float = Field(300.0, gt=0, description="Measurement window per step.")
    settle_seconds: float = Field(
        30.0, ge=0, description="Wait after a traffic change before the window starts counting."
    )
    min_requests: int = Field(
        100, ge=1, description="Canary requests needed in a window before any judgement."
    )
    max_holds: int = Field(
        3, ge=0, description="Consecutive holds (too little traffic) before rolling back."
    )
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Canary error rate ceiling.")
    max_error_rate_increase: float = Field(
        0.01, ge=0, le=1, description="Allowed canary error rate minus stable error rate."
    )
    max_p95_latency_ratio: float = Field(1.5, ge=1, description="canary p95 / stable p95 ceiling.")
    latency_slack_seconds: float = Field(
        0.05, ge=0, description="Absolute slack on the p95 bound (tiny latencies are noisy)."
    )
    max_genre_divergence: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Jensen-Shannon divergence (base 2) of genre rates allowed beyond sampling noise."
        ),
    )
    noise_confidence: float = Field(
        0.99,
        gt=0,
        lt=1,
        description=(
            "How sure genre_divergence and mean_score_shift must be that a difference is more "
            "than chance between samples of the observed sizes before they fail."
        ),
    )
    min_genre_predictions: int = Field(
        50, ge=1, description="Predicted genre labels per side needed to judge divergence."
    )
    max_mean_score_shift: float = Field(
        0.15, ge=0, le=1, description="Largest allowed per-genre mean score shift."
    )
    min_shadow_agreement: float = Field(
        0.8, ge=0, le=1, description="Mean genre-set agreement with stable on the same inputs."
    )
    min_shadow_samples: int = Field(30, ge=1, description="Shadow comparisons needed to judge.")
    max_feedback_accuracy_drop: float = Field(
        0.05, ge=0, le=1, description="Allowed drop of feedback accuracy (mean Jaccard)."
    )
    min_feedback_samples: int = Field(30, ge=1, description="Feedback items per side to judge.")

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[int]) -> list[int]:
        if not steps:
            raise ValueError("steps is empty: give traffic percentages such as [10, 25, 50, 100]")
        if any(not 0 < s < 100 for s in steps):
            raise ValueError(
                f"every step must lie in 1..99, got {steps}; passing the last step promotes to "
                "100 % (at 100 % there is no stable traffic left to compare with)"
            )
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps must increase strictly, got {steps}")
        return steps

    @field_validator("required_checks")
    @classmethod
    def _check_required(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(CHECK_NAMES))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; known: {', '.join(CHECK_NAMES)}")
        return names

    @model_validator(mode="after")
    def _check_windows(self) -> CanaryPolicy:
        if self.settle_seconds > self.window_seconds * 10:
            raise ValueError(
                f"settle_seconds={self.settle_seconds} is more than 10 windows "
                f"({self.window_seconds} s each); shorten it"
            )
        return self


def load_policy(path: Path | None) -> CanaryPolicy:
    """Read a YAML policy file (every key optional); ``None`` gives the defaults.

    Raises:
        CanaryPolicyError: The file is missing, is not YAML, or holds invalid or unknown keys.
    """
    if path is None:
        return CanaryPolicy()
    path = Path(path)
    if not path.is_file():
        raise CanaryPolicyError(f"canary policy {path} does not exist; see policies/canary.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CanaryPolicyError(f"canary policy {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CanaryPolicyError(
            f"canary policy {path} must be a mapping of settings, got {type(data).__name__}"
        )
    try:
        return CanaryPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors()
        )
        raise CanaryPolicyError(
            f"canary policy {path} is invalid — {problems} (see policies/canary.yaml)"
        ) from None


class Decision(BaseModel):
    """promote / hold / rollback, why, and the evidence (every number and threshold)."""

    action: Action
    reason: str
    traffic_percent: int
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    def evidence(self, snapshot: MetricsSnapshot, policy: CanaryPolicy) -> dict:
        """Everything behind the decision, JSON-ready, for the registry's event log."""
        return {
            "action": self.action,
            "reason": self.reason,
            "traffic_percent": self.traffic_percent,
            "checks": [c.model_dump() for c in self.checks],
            "snapshot": snapshot.model_dump(),
            "policy": policy.model_dump(),
        }


def decide(policy: CanaryPolicy, snapshot: MetricsSnapshot, *, holds_so_far: int = 0) -> Decision:
    """Promote, hold or roll back the canary from one window's snapshot.

    Args:
        policy: Thresholds and step plan.
        snapshot: Stable and canary over the same window.
        holds_so_far: Consecutive holds already made at this step; past ``policy.max_holds`` a
            step that still lacks traffic is rolled back (a canary nobody can judge never ships).

    Returns:
        The decision with every check behind it.
    """
    checks = run_checks(policy, snapshot)
    pct = snapshot.traffic_percent
    failed = [c for c in checks if c.status == "fail"]
    if snapshot.canary.requests < policy.min_requests:
        if holds_so_far >= policy.max_holds:
            return Decision(
                action="rollback",
                reason=(
                    f"still only {snapshot.canary.requests:.0f} canary requests after "
                    f"{holds_so_far} holds at {pct}% (need {policy.min_requests}); "
                    "not enough evidence to ship"
                ),
                traffic_percent=pct,
                checks=checks,
            )
        return Decision(
            action="hold",
            reason=(
                f"{snapshot.canary.requests:.0f} canary requests in the window, need "
                f"{policy.min_requests}; waiting another window"
            ),
            traffic_percent=pct,
            checks=checks,
        )
    if failed:
        names = "; ".join(f"{c.name} ({c.detail})" for c in failed)
        return Decision(
            action="rollback", reason=f"failed: {names}", traffic_percent=pct, checks=checks
        )
    missing = [c.name for c in checks if c.status == "skipped" and c.name in policy.required_checks]
    if missing:
        if holds_so_far >= policy.max_holds:
            return Decision(
                action="rollback",
                reason=f"required checks {missing} still without data after {holds_so_far} holds",
                traffic_percent=pct,
                checks=checks,
            )
        return Decision(
            action="hold",
            reason=f"required checks without enough data yet: {', '.join(missing)}",
            traffic_percent=pct,
            checks=checks,
        )
    skipped = [c.name for c in checks if c.status == "skipped"]
    reason = f"all checks passed at {pct}%"
    if skipped:
        reason += f" (skipped for lack of data: {', '.join(skipped)})"
    return Decision(action="promote", reason=reason, traffic_percent=pct, checks=checks)


def next_step(policy: CanaryPolicy, current_percent: int) -> int | None:
    """The traffic step after ``current_percent``, or None when the next move is promotion."""
    later = [s for s in policy.steps if s > current_percent]
    return later[0] if later else None
