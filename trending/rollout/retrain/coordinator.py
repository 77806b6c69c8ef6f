"""One run per model per cooldown, however many requests arrive, across replicas."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from trending.registry import PRODUCTION, Event, Registry
from trending.registry.objectstore import ObjectNotFoundError, PreconditionFailedError
from trending.rollout.retrain.launchers import RunLauncher
from trending.rollout.retrain.request import RetrainDecision, RetrainRequest


class _Claim(BaseModel):
    claimed_at: datetime
    owner: str
    reason: str


def _now() -> datetime:
    return datetime.now(UTC)


class RetrainCoordinator:
    """One run per model per ``cooldown``, however many requests arrive, across replicas.

    Args:
        registry_uri: The registry whose event log records the requests and runs.
        launcher: Starts the runs.
        cooldown: Minimum time between two runs of one model.
        claim_timeout: A claim older than this without a ``retrain_started`` event (its owner
            died mid-launch) may be taken over.
        owner: This replica's name, written into claims.
    """

    def __init__(
        self,
        registry_uri: str,
        launcher: RunLauncher,
        *,
        cooldown: timedelta = timedelta(hours=6),
        claim_timeout: timedelta = timedelta(minutes=10),
        owner: str | None = None,
    ) -> None:
        self.registry_uri = registry_uri
        self.launcher = launcher
        self.cooldown = cooldown
        self.claim_timeout = claim_timeout
        self.owner = owner or f"trigger-{uuid.uuid4().hex[:8]}"
        self.event_scan_limit = 1000
        self._lock = threading.Lock()
        self._registries: dict[str, Registry] = {}

    def registry(self, model_name: str) -> Registry:
        """The registry of ``model_name`` (cached)."""
        if model_name not in self._registries:
            self._registries[model_name] = Registry.from_uri(self.registry_uri, model_name)
        return self._registries[model_name]

    def last_started(self, model_name: str) -> Event | None:
        """The most recent ``retrain_started`` event of ``model_name``."""
        events = self.registry(model_name).events(limit=self.event_scan_limit)
        started = [e for e in events if e.kind == "retrain_started"]
        return started[-1] if started else None

    def _claim(self, registry: Registry, after: Event | None, request: RetrainRequest) -> bool:
        key = f"{registry.root}/retrain-claims/{after.id if after else 'first'}.json"
        claim = _Claim(claimed_at=_now(), owner=self.owner, reason=request.reason)
        data = claim.model_dump_json().encode()
        try:
            registry.store.put_bytes(key, data, if_none_match=True)
            return True
        except PreconditionFailedError:
            pass
        try:
            existing, etag = registry.store.get_bytes(key)
        except ObjectNotFoundError:
            return False  # released right now by a failed launch; the next alert retries
        if _now() - _Claim.model_validate_json(existing).claimed_at < self.claim_timeout:
            return False
        try:  # the owner died between claiming and starting: take over, atomically
            registry.store.put_bytes(key, data, if_match=etag)
            return True
        except PreconditionFailedError:
            return False

    def _release(self, registry: Registry, after: Event | None) -> None:
        registry.store.delete(
            f"{registry.root}/retrain-claims/{after.id if after else 'first'}.json"
        )

    def request(self, request: RetrainRequest) -> RetrainDecision:
        """Start a run for ``request`` unless one started within the cooldown (or is starting)."""
        registry = self.registry(request.model_name)
        decision = {
            "model_name": request.model_name,
            "reason": request.reason,
            "window": request.window,
        }
        with self._lock:
            last = self.last_started(request.model_name)
            if last is not None and _now() - last.at < self.cooldown:
                return RetrainDecision(
                    **decision,
                    status="suppressed",
                    run_id=last.details.get("run_id"),
                    detail=(
                        f"run {last.details.get('run_id')} started {last.at:%Y-%m-%d %H:%M:%S} "
                        f"UTC, within the cooldown of {self.cooldown}"
                    ),
                )
            if not self._claim(registry, last, request):
                return RetrainDecision(
                    **decision, status="suppressed", detail="another replica is starting a run"
                )
            details = {"window": request.window, "evidence": request.evidence, "owner": self.owner}
            production = registry.alias(PRODUCTION)
            version = production.version if production else None
            registry.log_event(
                "retrain_requested",
                actor=request.actor,
                reason=request.reason,
                details=details,
                version=version,
            )
            try:
                run_id = self.launcher.launch(request)
            except Exception as exc:
                registry.log_event(
                    "retrain_failed",
                    actor=request.actor,
                    reason=request.reason,
                    details={**details, "error": str(exc)},
                    version=version,
                )
                self._release(registry, last)
                return RetrainDecision(**decision, status="failed", detail=str(exc))
            registry.log_event(
                "retrain_started",
                actor=request.actor,
                reason=request.reason,
                details={**details, "run_id": run_id},
                version=version,
            )
            return RetrainDecision(**decision, status="started", run_id=run_id)
