"""Data lineage of a model version: registry version -> bundle's data snapshot -> its parents."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, computed_field

from trending.data.snapshots import SnapshotManifest, SnapshotStore
from trending.data.sources.licence import SourceLicence
from trending.registry import Registry


class DataLineage(BaseModel):
    """Which data a model version was trained on, and where that data came from.

    Attributes:
        snapshots: The bundle's snapshot first, then its parents, newest first.
        missing: A snapshot id the chain names but the store no longer holds (or the bundle's
            own snapshot when it is gone).
    """

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    version: int
    registered_at: datetime
    model_family: str | None = None
    data_snapshot_id: str | None = None
    snapshots: list[SnapshotManifest] = []
    missing: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def licence(self) -> SourceLicence | None:
        """The terms of the data the version learnt from: its own snapshot's licence."""
        return self.snapshots[0].licence if self.snapshots else None


def data_lineage(registry: Registry, snapshots: SnapshotStore, ref: str | int) -> DataLineage:
    """Follow a version (number, ``latest`` or alias) to its data snapshot and that one's parents.

    Raises:
        VersionNotFoundError, AliasNotFoundError: ``ref`` names no version.
    """
    record = registry.show(registry.resolve(ref))
    lineage = DataLineage(
        model_name=record.model_name,
        version=record.version,
        registered_at=record.registered_at,
        model_family=record.model_family,
        data_snapshot_id=record.lineage.data_snapshot_id,
    )
    sid = record.lineage.data_snapshot_id
    if sid is None:
        return lineage
    try:
        ancestry = snapshots.ancestry(sid)
    except KeyError:
        lineage.missing = sid
        return lineage
    lineage.snapshots = ancestry.chain
    lineage.missing = ancestry.missing
    return lineage
