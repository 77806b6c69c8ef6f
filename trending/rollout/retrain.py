"""Continuous training requests: choose the parameters, de-duplicate, launch, and record the story.

Whatever asks for a retraining run (a drift alert through Alertmanager, the schedule, new data)
goes through :class:`RetrainCoordinator.request`, which allows one run per model per cooldown:

1. an in-process lock serialises concurrent requests of one process;
2. the registry's event log says when the last run started (``retrain_started``);
3. a create-only claim object ``models/<name>/retrain-claims/<last started event id>.json`` in the
   registry's store decides between replicas that saw the same history: only one can create it.

The winner writes ``retrain_requested`` (reason, data window, evidence), launches the run through a
:class:`RunLauncher`, and writes ``retrain_started`` with the run id. A failed launch is recorded as
``retrain_failed`` and releases the claim so the next alert can try again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, Field

from trending.registry import PRODUCTION, Event, Registry
from trending.registry.objectstore import ObjectNotFoundError, PreconditionFailedError

RetrainReason = Literal["drift", "schedule", "data_volume", "performance"]
DataWindow = Literal["fixed", "growing", "drift_selected"]
REASONS: tuple[str, ...] = ("drift", "schedule", "data_volume", "performance")
WINDOWS: tuple[str, ...] = ("fixed", "growing", "drift_selected")

# Which training data each reason calls for: drift -> emphasise the recent, drifted data;
# performance -> a fixed recent window (old labels may be wrong now); schedule and new data ->
# everything so far.
DEFAULT_WINDOW: dict[str, DataWindow] = {
    "drift": "drift_selected",
    "performance": "fixed",
    "schedule": "growing",
    "data_volume": "growing",
}

CONTINUOUS_TRAINING_COMMAND: tuple[str, ...] = (
    "-m",
    "cli",
    "pipeline",
    "run",
    "continuous-training",
)


class RetrainError(RuntimeError):
    """A retraining run that could not be requested or launched; the message says why."""


class RetrainRequest(BaseModel):
    """What to retrain and why."""

    model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    reason: RetrainReason
    window: DataWindow
    actor: str = "retrain-trigger"
    evidence: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def for_reason(
        cls,
        model_name: str,
        reason: RetrainReason,
        *,
        window: DataWindow | None = None,
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


class RunLauncher(Protocol):
    """Starts a continuous-training run without waiting for it; returns the run id."""

    def launch(self, request: RetrainRequest) -> str:
        """Start the run for ``request`` and return its id."""
        ...


class LocalCommandLauncher:
    """Runs the continuous-training pipeline locally, in a subprocess of this interpreter.

    The command is ``<python> -m cli pipeline run continuous-training --reason <r>
    --window <w>`` with ``TRENDING_MODEL_NAME`` and ``TRENDING_RETRAIN_RUN_ID`` in its environment;
    ``base_command`` replaces everything before ``--reason`` (tests use a tiny script).
    """

    def __init__(
        self,
        base_command: Sequence[str] | None = None,
        *,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.base_command = list(base_command or [sys.executable, *CONTINUOUS_TRAINING_COMMAND])
        self.log_dir = log_dir
        self.env = env
        self.cwd = cwd
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, request: RetrainRequest) -> list[str]:
        """The full command line for ``request``."""
        return [*self.base_command, "--reason", request.reason, "--window", request.window]

    def launch(self, request: RetrainRequest) -> str:
        """Start the subprocess (not waiting for it) and return ``local-<hex>``."""
        import os

        run_id = f"local-{uuid.uuid4().hex[:12]}"
        env = {
            **os.environ,
            **(self.env or {}),
            "TRENDING_MODEL_NAME": request.model_name,
            "TRENDING_RETRAIN_RUN_ID": run_id,
        }
        output: Any = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{run_id}.log", "wb")  # noqa: SIM115 - closed by reaper
        try:
            process = subprocess.Popen(
                self.command(request),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
            )
        except OSError as exc:
            raise RetrainError(
                f"could not start {self.base_command[0]!r}: {exc}; check the launcher command"
            ) from None
        finally:
            if output is not subprocess.DEVNULL:
                output.close()  # the child holds its own descriptor
        self.processes[run_id] = process
        # Reap the child when it ends so no zombie stays behind.
        threading.Thread(target=process.wait, name=f"reap-{run_id}", daemon=True).start()
        return run_id


class KfpApiLauncher:
    """Creates a run through the KFP v2beta1 REST API (``POST /apis/v2beta1/runs``), plain HTTP.

    Args:
        host: The KFP API endpoint, e.g. ``http://ml-pipeline.kubeflow:8888``.
        pipeline_id: The continuous-training pipeline's id.
        pipeline_version_id: The pipeline version to run.
        experiment_id: Experiment to file the run under (KFP's default when None).
        token: Bearer token for the API (e.g. a service-account token), if it needs one.
        client: An ``httpx.Client`` to use (tests, custom TLS); one is created otherwise.
    """

    def __init__(
        self,
        host: str,
        pipeline_id: str,
        pipeline_version_id: str,
        *,
        experiment_id: str | None = None,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not host.startswith(("http://", "https://")):
            raise RetrainError(f"KFP host {host!r} must start with http:// or https://")
        self.url = host.rstrip("/") + "/apis/v2beta1/runs"
        self.pipeline_id = pipeline_id
        self.pipeline_version_id = pipeline_version_id
        self.experiment_id = experiment_id
        self.token = token
        self.client = client or httpx.Client(timeout=timeout)

    def body(self, request: RetrainRequest) -> dict[str, Any]:
        """The v2beta1 Run object for ``request``."""
        body: dict[str, Any] = {
            "display_name": f"continuous-training {request.model_name} ({request.reason})",
            "description": (
                f"requested by {request.actor}: {request.reason}, {request.window} window"
            ),
            "pipeline_version_reference": {
                "pipeline_id": self.pipeline_id,
                "pipeline_version_id": self.pipeline_version_id,
            },
            "runtime_config": {
                "parameters": {
                    "model_name": request.model_name,
                    "reason": request.reason,
                    "window": request.window,
                }
            },
        }
        if self.experiment_id:
            body["experiment_id"] = self.experiment_id
        return body

    def launch(self, request: RetrainRequest) -> str:
        """POST the run and return the ``run_id`` KFP assigned."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self.client.post(self.url, json=self.body(request), headers=headers)
        except httpx.HTTPError as exc:
            raise RetrainError(f"KFP API {self.url} unreachable: {exc}") from None
        if response.status_code >= 400:
            raise RetrainError(
                f"KFP API refused the run ({response.status_code}): {response.text[:500]}"
            )
        run_id = response.json().get("run_id")
        if not run_id:
            raise RetrainError(f"KFP API answered without a run_id: {response.text[:500]}")
        return str(run_id)


class RetrainDecision(BaseModel):
    """What happened to one request."""

    model_name: str
    status: Literal["started", "suppressed", "failed"]
    reason: RetrainReason
    window: DataWindow
    run_id: str | None = None
    detail: str = ""


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

    now = now or _now()
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
