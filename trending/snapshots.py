"""Content-addressed, immutable dataset snapshots in an object store.

A snapshot's id is the hash of its canonical rows, so the same data always gets the same id and
re-ingesting it is a no-op. Layout: ``snapshots/<id>/{titles.parquet,rejects.parquet,manifest.json}``;
the manifest is written last, so a snapshot without one is incomplete and invisible.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from trending.objectstore import ObjectNotFoundError, ObjectStore
from trending.schema import SCHEMA_VERSION, TITLE_COLUMNS, ValidationReport


class SnapshotManifest(BaseModel):
    """Where a snapshot came from and what it holds."""

    snapshot_id: str
    source: str
    params: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int]
    schema_version: int = SCHEMA_VERSION
    parent: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def snapshot_id(titles: pd.DataFrame) -> str:
    """Hash of the canonical rows: sorted by title_id, fixed column order, ISO timestamps."""
    canonical = titles.loc[:, list(TITLE_COLUMNS)].sort_values("title_id", kind="stable")
    digest = hashlib.sha256()
    for record in canonical.to_dict(orient="records"):
        record["event_timestamp"] = pd.Timestamp(record["event_timestamp"]).isoformat()
        record["reviews"] = list(record["reviews"])
        record["genres"] = list(record["genres"])
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return "snap-" + digest.hexdigest()[:16]


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


class SnapshotStore:
    """Write and read snapshots in any ObjectStore."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def write(
        self,
        report: ValidationReport,
        *,
        source: str,
        params: dict[str, Any] | None = None,
        parent: str | None = None,
    ) -> SnapshotManifest:
        """Store the accepted rows and the quarantined rejects; return the manifest.

        Writing the same accepted rows again returns the existing snapshot unchanged.
        """
        if report.accepted.empty:
            raise ValueError(
                f"no row was accepted ({report.counts['rejected']} rejected): nothing to snapshot; "
                "see the rejects for the reasons"
            )
        sid = snapshot_id(report.accepted)
        if self.store.exists(f"snapshots/{sid}/manifest.json"):
            return self.manifest(sid)
        manifest = SnapshotManifest(
            snapshot_id=sid, source=source, params=params or {}, counts=report.counts, parent=parent
        )
        prefix = f"snapshots/{sid}"
        self.store.put_bytes(f"{prefix}/titles.parquet", _parquet_bytes(report.accepted))
        rejects = report.rejected.astype({c: "string" for c in report.rejected.columns if c != "row"})
        self.store.put_bytes(f"{prefix}/rejects.parquet", _parquet_bytes(rejects))
        self.store.put_bytes(f"{prefix}/manifest.json", manifest.model_dump_json(indent=2).encode())
        return manifest

    def manifest(self, sid: str) -> SnapshotManifest:
        """The manifest of snapshot ``sid``."""
        try:
            data, _ = self.store.get_bytes(f"snapshots/{sid}/manifest.json")
        except ObjectNotFoundError:
            raise KeyError(f"snapshot {sid} does not exist (list them with `trending data snapshots`)") from None
        return SnapshotManifest.model_validate_json(data)

    def read(self, sid: str) -> pd.DataFrame:
        """The accepted rows of snapshot ``sid``."""
        self.manifest(sid)
        data, _ = self.store.get_bytes(f"snapshots/{sid}/titles.parquet")
        return pd.read_parquet(io.BytesIO(data))

    def rejects(self, sid: str) -> pd.DataFrame:
        """The quarantined rows of snapshot ``sid`` with their reasons."""
        data, _ = self.store.get_bytes(f"snapshots/{sid}/rejects.parquet")
        return pd.read_parquet(io.BytesIO(data))

    def list(self) -> list[SnapshotManifest]:
        """Every complete snapshot, oldest first."""
        ids = {k.split("/")[1] for k in self.store.list("snapshots") if k.endswith("/manifest.json")}
        return sorted((self.manifest(i) for i in ids), key=lambda m: m.created_at)
