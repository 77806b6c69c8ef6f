"""Freshness signals: how old the served models and the newest data are, and how much is new.

Plain functions over the registry and the snapshot store; ``serving.signals`` exports them as
Prometheus gauges, the retrain trigger uses them for the schedule and data-volume checks.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

from trending.data.snapshots import SnapshotStore
from trending.registry import PRODUCTION, Registry, RegistryError


def model_ages(registry: Registry, *, now: datetime | None = None) -> dict[str, float]:
    """Seconds since the version each alias points at was registered, per alias."""
    now = now or datetime.now(UTC)
    ages = {}
    for alias, record in registry.aliases().items():
        if record.version is None:
            continue
        with suppress(RegistryError):
            ages[alias] = (now - registry.show(record.version).registered_at).total_seconds()
    return ages


def data_age(snapshots: SnapshotStore, *, now: datetime | None = None) -> float | None:
    """Seconds since the newest dataset snapshot was written; None when there is none."""
    manifests = snapshots.list()
    if not manifests:
        return None
    return ((now or datetime.now(UTC)) - manifests[-1].created_at).total_seconds()


def new_rows_since_training(registry: Registry, snapshots: SnapshotStore) -> int | None:
    """Accepted rows of the newest snapshot minus those of the snapshot production was trained on.

    Returns None when there is no production version or no snapshot to compare. When production's
    snapshot is unknown (not recorded, or gone), every row of the newest snapshot counts as new.
    """
    manifests = snapshots.list()
    production = registry.alias(PRODUCTION)
    if not manifests or production is None or production.version is None:
        return None
    newest = manifests[-1].counts.get("accepted", 0)
    trained_on = registry.show(production.version).lineage.data_snapshot_id
    if trained_on is None:
        return newest
    try:
        return newest - snapshots.manifest(trained_on).counts.get("accepted", 0)
    except KeyError:
        return newest
