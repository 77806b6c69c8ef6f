"""One run per model per cooldown, however many requests arrive, across replicas.

Deduplication reads one small index object per dedup group, not the event log:
``models/<name>/retrain-index/<group>.json`` holds the last run started for the group and, while
a replica is starting one, its claim. The group is the model: Alertmanager groups retrain alerts
by ``alertname``, ``model`` and ``reason``, so every group and every repeat of a model's alerts
lands on the model's entry (and so does the schedule check), which keeps the cooldown per model.
The entry changes only by compare-and-swap on its ETag, so of the replicas that read the same
entry exactly one can claim it. However long the event log grows, a repeat is found in one read.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from trending.registry import DEFAULT_MODEL_NAME, PRODUCTION, Registry
from trending.registry.objectstore import ObjectNotFoundError, PreconditionFailedError
from trending.rollout.retrain.launchers import RunLauncher
from trending.rollout.retrain.request import RetrainDecision, RetrainError, RetrainRequest


class LaunchClaim(BaseModel):
    """A replica starting a run right now."""

    owner: str
    reason: str
    claimed_at: datetime


class RetrainIndexEntry(BaseModel):
    """The last run started for one dedup group, and the claim of a run being started."""

    group: str
    last_run_id: str | None = None
    last_reason: str | None = None
    last_started_at: datetime | None = None
    starting: LaunchClaim | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class RetrainCoordinator:
    """One run per model per ``cooldown``, however many requests arrive, across replicas.

    Args:
        registry_uri: The registry whose event log records the requests and runs.
        launcher: Starts the runs.
        models: The registry models this trigger may retrain; requests for others are refused
            before anything is written (an alert label must not create a registry namespace).
        cooldown: Minimum time between two runs of one model.
        claim_timeout: A claim older than this whose run never started (its owner died
            mid-launch) may be taken over.
        owner: This replica's name, written into claims.
    """

    def __init__(
        self,
        registry_uri: str,
        launcher: RunLauncher,
        *,
        models: Collection[str] = (DEFAULT_MODEL_NAME,),
        cooldown: timedelta = timedelta(hours=6),
        claim_timeout: timedelta = timedelta(minutes=10),
        owner: str | None = None,
    ) -> None:
        if not models:
            raise ValueError("a retrain coordinator needs at least one model it may retrain")
        self.registry_uri = registry_uri
        self.launcher = launcher
        self.models = frozenset(models)
        self.cooldown = cooldown
        self.claim_timeout = claim_timeout
        self.owner = owner or f"trigger-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._registries: dict[str, Registry] = {}

    def check_model(self, model_name: str) -> None:
        """Refuse a model this trigger is not configured for.

        Raises:
            RetrainError: ``model_name`` is not one of :attr:`models`.
        """
        if model_name not in self.models:
            raise RetrainError(
                f"model {model_name!r} is not retrained by this trigger (configured: "
                f"{', '.join(sorted(self.models))}); fix the alert rule's 'model' label"
            )

    def registry(self, model_name: str) -> Registry:
        """The registry of ``model_name`` (cached; only configured models)."""
        self.check_model(model_name)
        if model_name not in self._registries:
            self._registries[model_name] = Registry.from_uri(self.registry_uri, model_name)
        return self._registries[model_name]

    @staticmethod
    def dedup_group(request: RetrainRequest) -> str:
        """The index entry ``request`` is deduplicated on: its model (see the module docstring)."""
        return request.model_name

    def _index_key(self, registry: Registry, group: str) -> str:
        return f"{registry.root}/retrain-index/{group}.json"

    def index_entry(self, model_name: str, group: str | None = None) -> RetrainIndexEntry | None:
        """The index entry of ``group`` (default: the model's), or None before the first run."""
        entry, _ = self._read(self.registry(model_name), group or model_name)
        return entry

    def _read(self, registry: Registry, group: str) -> tuple[RetrainIndexEntry | None, str | None]:
        try:
            data, etag = registry.store.get_bytes(self._index_key(registry, group))
        except ObjectNotFoundError:
            return None, None
        return RetrainIndexEntry.model_validate_json(data), etag

    def _write(self, registry: Registry, entry: RetrainIndexEntry, etag: str | None) -> str | None:
        """Compare-and-swap the entry; its new ETag, or None when another writer changed it."""
        try:
            return registry.store.put_bytes(
                self._index_key(registry, entry.group),
                entry.model_dump_json().encode(),
                if_none_match=etag is None,
                if_match=etag,
            )
        except PreconditionFailedError:
            return None

    def request(self, request: RetrainRequest) -> RetrainDecision:
        """Start a run for ``request`` unless one started within the cooldown (or is starting).

        Raises:
            RetrainError: The request's model is not configured (nothing is written then).
        """
        registry = self.registry(request.model_name)
        group = self.dedup_group(request)
        decision = {
            "model_name": request.model_name,
            "reason": request.reason,
            "window": request.window,
        }
        with self._lock:
            entry, etag = self._read(registry, group)
            now = _now()
            last = entry.last_started_at if entry is not None else None
            if entry is not None and last is not None and now - last < self.cooldown:
                return RetrainDecision(
                    **decision,
                    status="suppressed",
                    run_id=entry.last_run_id,
                    detail=(
                        f"run {entry.last_run_id} started {last:%Y-%m-%d %H:%M:%S} UTC, "
                        f"within the cooldown of {self.cooldown}"
                    ),
                )
            starting = entry.starting if entry is not None else None
            if starting is not None and now - starting.claimed_at < self.claim_timeout:
                return RetrainDecision(
                    **decision, status="suppressed", detail="another replica is starting a run"
                )
            before = entry or RetrainIndexEntry(group=group)
            claimed = before.model_copy(
                update={
                    "starting": LaunchClaim(owner=self.owner, reason=request.reason, claimed_at=now)
                }
            )
            claimed_etag = self._write(registry, claimed, etag)
            if claimed_etag is None:
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
                # Release the claim so the next alert can try again.
                self._write(registry, before.model_copy(update={"starting": None}), claimed_etag)
                return RetrainDecision(**decision, status="failed", detail=str(exc))
            started = RetrainIndexEntry(
                group=group,
                last_run_id=run_id,
                last_reason=request.reason,
                last_started_at=_now(),
            )
            if self._write(registry, started, claimed_etag) is None:
                # Our claim timed out and was taken over meanwhile; the run did start, so the
                # index must say so all the same.
                registry.store.put_bytes(
                    self._index_key(registry, group), started.model_dump_json().encode()
                )
            registry.log_event(
                "retrain_started",
                actor=request.actor,
                reason=request.reason,
                details={**details, "run_id": run_id},
                version=version,
            )
            return RetrainDecision(**decision, status="started", run_id=run_id)
