"""Run records: experiment tracking in the registry's object store, without a tracking server.

Every training run writes one JSON object at ``models/<name>/runs/<run_id>.json``: parameters,
metrics, data snapshot id, code version, artifacts and the champion choice. The same record goes
into ``Registry.register_version(..., run_record=record.model_dump(mode="json"))`` as lineage.
``trending runs list|show|compare`` reads them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from trending.registry.objectstore import ObjectNotFoundError, ObjectStore, open_store

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class RunRecord(BaseModel):
    """One training run: what went in, what came out."""

    model_config = {"protected_namespaces": ()}

    run_id: str = Field(default_factory=new_run_id)
    model_name: str
    status: Literal["running", "succeeded", "failed", "gate_failed"] = "succeeded"
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    data_snapshot_id: str | None = None
    code_version: str = "unknown"
    params: dict[str, Any] = Field(default_factory=dict, description="Per family, plus the run's.")
    metrics: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="family -> metric -> value (baselines included)."
    )
    champion: str | None = None
    registered_version: int | None = None
    artifacts: dict[str, str] = Field(default_factory=dict, description="name -> URI or path")
    search: dict[str, Any] = Field(
        default_factory=dict,
        description="Family -> its hyper-parameter search (trending.modelling.search.SearchResult).",
    )
    notes: str = ""


class RunNotFoundError(LookupError):
    """No run with that id."""


class RunLog:
    """Run records of one model in an object store (local folder or S3)."""

    def __init__(self, store: ObjectStore, model_name: str) -> None:
        self.store = store
        self.model_name = model_name
        self.prefix = f"models/{model_name}/runs"

    @classmethod
    def from_uri(cls, uri: str, model_name: str) -> RunLog:
        """Open the run log of the registry at ``file:///dir`` or ``s3://bucket/prefix``."""
        return cls(open_store(uri), model_name)

    def _key(self, run_id: str) -> str:
        if not _RUN_ID_RE.match(run_id):
            raise ValueError(
                f"invalid run id {run_id!r}: use letters, digits, '_', '.', '-' (max 128)"
            )
        return f"{self.prefix}/{run_id}.json"

    def write(self, record: RunRecord) -> RunRecord:
        """Store (or update) a run record; its model name must be this log's."""
        if record.model_name != self.model_name:
            raise ValueError(
                f"run {record.run_id} is for model {record.model_name!r}, not {self.model_name!r}"
            )
        self.store.put_bytes(self._key(record.run_id), record.model_dump_json(indent=2).encode())
        return record

    def get(self, run_id: str) -> RunRecord:
        """The record of ``run_id``."""
        try:
            data, _ = self.store.get_bytes(self._key(run_id))
        except ObjectNotFoundError:
            raise RunNotFoundError(
                f"no run {run_id!r} for model {self.model_name}: see `trending runs list`"
            ) from None
        return RunRecord.model_validate_json(data)

    def list(self, *, limit: int | None = None) -> list[RunRecord]:
        """Runs, oldest first (the last ``limit`` when given)."""
        keys = [k for k in self.store.list(self.prefix) if k.endswith(".json")]
        records = []
        for key in keys:
            try:
                data, _ = self.store.get_bytes(key)
            except ObjectNotFoundError:
                continue
            records.append(RunRecord.model_validate_json(data))
        records.sort(key=lambda r: (r.started_at, r.run_id))
        return records[-limit:] if limit else records


def compare_runs(records: list[RunRecord], *, families: list[str] | None = None) -> list[list[str]]:
    """Rows for a side-by-side table: one column per run, one row per field or metric.

    The first row is the header (``["", run_id, ...]``); metric rows are ``<family>.<metric>``.
    """
    rows = [["", *(r.run_id for r in records)]]
    for label, get in (
        ("status", lambda r: r.status),
        ("started", lambda r: r.started_at.strftime("%Y-%m-%d %H:%M")),
        ("snapshot", lambda r: r.data_snapshot_id or "-"),
        ("code", lambda r: r.code_version),
        ("champion", lambda r: r.champion or "-"),
        ("version", lambda r: "-" if r.registered_version is None else str(r.registered_version)),
    ):
        rows.append([label, *(get(r) for r in records)])
    keys = sorted(
        {
            (family, metric)
            for r in records
            for family, values in r.metrics.items()
            if families is None or family in families
            for metric, value in values.items()
            if isinstance(value, int | float)
        }
    )
    for family, metric in keys:
        cells = []
        for r in records:
            value = r.metrics.get(family, {}).get(metric)
            cells.append("-" if value is None else f"{value:.4g}")
        rows.append([f"{family}.{metric}", *cells])
    return rows
