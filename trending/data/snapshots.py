"""Content-addressed, immutable dataset snapshots in an object store.

A snapshot's id is the hash of its canonical rows, so the same data always gets the same id and
re-ingesting it is a no-op. Layout:
``snapshots/<id>/{titles.parquet,rejects.parquet,manifest.json}``; the manifest is written last,
so a snapshot without one is incomplete and invisible.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from trending.data.schema import SCHEMA_VERSION, TITLE_COLUMNS, ValidationReport
from trending.data.sources.licence import SourceLicence
from trending.registry.objectstore import ObjectNotFoundError, ObjectStore


class SnapshotManifest(BaseModel):
    """Where a snapshot came from and what it holds."""

    snapshot_id: str
    source: str
    params: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int]
    schema_version: int = SCHEMA_VERSION
    parent: str | None = Field(
        None, description="The previous snapshot of the same source when this one was written."
    )
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    notes: dict[str, Any] = Field(
        default_factory=dict,
        description="What the source reported that is not a row rejection (e.g. dropped genres).",
    )
    warnings: list[str] = Field(
        default_factory=list, description="Distribution changes against the parent snapshot."
    )
    licence: SourceLicence | None = Field(
        None, description="The terms the rows may be used under (None only in old snapshots)."
    )
    personal_data_masked: dict[str, int] = Field(
        default_factory=dict,
        description="Personal data found and masked in plots and reviews, by kind.",
    )


class SnapshotAncestry(BaseModel):
    """A snapshot and its parents, newest first; ``missing`` names a parent that is gone."""

    chain: list[SnapshotManifest]
    missing: str | None = None


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
        notes: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
        licence: SourceLicence | None = None,
        personal_data_masked: dict[str, int] | None = None,
    ) -> SnapshotManifest:
        """Store the accepted rows and the quarantined rejects; return the manifest.

        Writing the same accepted rows again returns the existing snapshot unchanged. The
        manifest is written last: a run that fails midway leaves no visible snapshot.
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
            snapshot_id=sid,
            source=source,
            params=params or {},
            counts=report.counts,
            parent=parent,
            notes=notes or {},
            warnings=warnings or [],
            licence=licence,
            personal_data_masked=personal_data_masked or {},
        )
        prefix = f"snapshots/{sid}"
        self.store.put_bytes(f"{prefix}/titles.parquet", _parquet_bytes(report.accepted))
        rejects = report.rejected.astype(
            {c: "string" for c in report.rejected.columns if c != "row"}
        )
        self.store.put_bytes(f"{prefix}/rejects.parquet", _parquet_bytes(rejects))
        self.store.put_bytes(f"{prefix}/manifest.json", manifest.model_dump_json(indent=2).encode())
        return manifest

    def manifest(self, sid: str) -> SnapshotManifest:
        """The manifest of snapshot ``sid``."""
        try:
            data, _ = self.store.get_bytes(f"snapshots/{sid}/manifest.json")
        except ObjectNotFoundError:
            raise KeyError(
                f"snapshot {sid} does not exist (list them with `trending data snapshots`)"
            ) from None
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
        ids = {
            k.split("/")[1] for k in self.store.list("snapshots") if k.endswith("/manifest.json")
        }
        return sorted((self.manifest(i) for i in ids), key=lambda m: m.created_at)

    def latest(self, source: str | None = None) -> SnapshotManifest | None:
        """The newest complete snapshot (of ``source`` when given), or None."""
        found = [m for m in self.list() if source is None or m.source == source]
        return found[-1] if found else None

    def ancestry(self, sid: str, *, limit: int = 1000) -> SnapshotAncestry:
        """Snapshot ``sid`` followed by its parents, newest first.

        Raises:
            KeyError: ``sid`` itself does not exist.
        """
        chain = [self.manifest(sid)]
        seen = {sid}
        while (parent := chain[-1].parent) is not None and len(chain) < limit:
            if parent in seen:  # cannot happen with content ids, but never loop forever
                break
            try:
                chain.append(self.manifest(parent))
            except KeyError:
                return SnapshotAncestry(chain=chain, missing=parent)
            seen.add(parent)
        return SnapshotAncestry(chain=chain)
