"""Ingest: source rows -> validation with quarantine -> content-addressed snapshot -> Feast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trending.feature_store import TitleFeatureStore
from trending.genres import GenreVocabulary
from trending.objectstore import open_store
from trending.schema import ValidationReport, validate_titles
from trending.settings import Settings
from trending.snapshots import SnapshotManifest, SnapshotStore


class RejectRateExceededError(ValueError):
    """Too many rows failed validation for the batch to be trusted."""


@dataclass
class IngestResult:
    """What one ingest produced."""

    manifest: SnapshotManifest
    report: ValidationReport


def data_store_uri(settings: Settings) -> str:
    """Where snapshots live: ``<home>/data`` locally."""
    return settings.data_dir.resolve().as_uri()


def ingest_frame(
    frame: pd.DataFrame,
    settings: Settings,
    *,
    source: str,
    params: dict[str, object] | None = None,
    max_reject_rate: float = 0.2,
) -> IngestResult:
    """Validate ``frame``, quarantine bad rows, and write a snapshot of the accepted ones.

    Raises RejectRateExceededError (writing nothing) when more than ``max_reject_rate`` of the
    rows are rejected.
    """
    report = validate_titles(frame, GenreVocabulary())
    if report.reject_rate > max_reject_rate:
        sample = report.rejected["reason"].head(3).tolist()
        raise RejectRateExceededError(
            f"{report.counts['rejected']} of {report.counts['in']} rows rejected "
            f"({report.reject_rate:.0%} > {max_reject_rate:.0%}); first reasons: {sample}"
        )
    snapshots = SnapshotStore(open_store(data_store_uri(settings)))
    previous = snapshots.list()
    manifest = snapshots.write(
        report, source=source, params=params, parent=previous[-1].snapshot_id if previous else None
    )
    return IngestResult(manifest=manifest, report=report)


def feature_store(settings: Settings) -> TitleFeatureStore:
    """The environment's Feast store."""
    return TitleFeatureStore(Path(settings.feature_repo), settings.feature_store_dir)


def publish_features(settings: Settings, snapshot_id: str) -> int:
    """Make a snapshot's titles the Feast offline source, apply the repo, materialize online."""
    titles = SnapshotStore(open_store(data_store_uri(settings))).read(snapshot_id)
    store = feature_store(settings)
    store.write_source(titles)
    store.apply()
    store.materialize()
    return len(titles)
