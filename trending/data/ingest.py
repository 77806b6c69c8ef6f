"""Ingest: source rows -> validation with quarantine -> content-addressed snapshot -> Feast.

Every run reports in = accepted + rejected; rows that fail are kept with their reasons in the
snapshot's ``rejects.parquet``; the batch fails (writing nothing) only past ``max_reject_rate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from trending.data.privacy import mask_frame, masked_counts
from trending.data.schema import ValidationReport, distribution_warnings, validate_titles
from trending.data.snapshots import SnapshotManifest, SnapshotStore
from trending.data.sources.base import ProgressCallback, SourceBatch, TitleSource, no_progress
from trending.data.sources.licence import SourceLicence, derived_licence, licence_for
from trending.genres import GenreVocabulary
from trending.registry.objectstore import open_store
from trending.settings import Settings

if (
    TYPE_CHECKING
):  # Feast and the featurizer load only where features are used, not in snapshot steps.
    from trending.features.store import TitleFeatureStore


class RejectRateExceededError(ValueError):
    """Too many rows failed validation for the batch to be trusted."""


@dataclass
class IngestResult:
    """What one ingest produced."""

    manifest: SnapshotManifest
    report: ValidationReport

    @property
    def warnings(self) -> list[str]:
        """Distribution changes against the parent snapshot (a report, not rejections)."""
        return self.manifest.warnings


def data_store_uri(settings: Settings) -> str:
    """Where snapshots live: TRENDING_DATA_URI (s3:// in the cluster), else ``<home>/data``."""
    return settings.resolved_data_uri


def snapshot_store(settings: Settings) -> SnapshotStore:
    """The environment's snapshot store."""
    return SnapshotStore(open_store(data_store_uri(settings)))


def check_reject_rate(report: ValidationReport, max_reject_rate: float) -> None:
    """Raise RejectRateExceededError when more than ``max_reject_rate`` of the rows failed."""
    if report.reject_rate > max_reject_rate:
        sample = report.rejected["reason"].head(3).tolist()
        raise RejectRateExceededError(
            f"{report.counts['rejected']} of {report.counts['in']} rows rejected "
            f"({report.reject_rate:.0%} > {max_reject_rate:.0%}); nothing was written. "
            f"First reasons: {sample}; `trending data validate` lists them all"
        )


def ingest_frame(
    frame: pd.DataFrame,
    settings: Settings,
    *,
    source: str,
    params: dict[str, Any] | None = None,
    max_reject_rate: float | None = None,
    notes: dict[str, Any] | None = None,
    validation_progress: Callable[[int, int], None] | None = None,
    licence: SourceLicence | None = None,
) -> IngestResult:
    """Validate ``frame``, quarantine bad rows, and write a snapshot of the accepted ones.

    The parent of the new snapshot is the newest snapshot of the same ``source``; the batch is
    compared with it (genre priors, plot length, kinds) and the findings are kept as warnings.

    Args:
        frame: Title record rows.
        settings: Where the snapshot store is.
        source: The source name (``tmdb``, ``file``, ``synthetic``).
        params: What was asked, recorded in the manifest.
        max_reject_rate: Fail above this share of rejected rows (default: the setting).
        notes: What the source reported besides rows, recorded in the manifest.
        validation_progress: Progress of the row checks, ``(done, total)``.
        licence: The rows' terms; default: the source's own (see ``licence_for``).

    Raises:
        RejectRateExceededError: Too many rows failed; nothing is written.
        UndeclaredLicenceError: Nobody declared the rows' licence; nothing is written.
    """
    limit = settings.max_reject_rate if max_reject_rate is None else max_reject_rate
    licence_for(source, params, licence)  # refuse before spending time on validation
    report = validate_titles(frame, GenreVocabulary(), progress=validation_progress)
    check_reject_rate(report, limit)
    manifest = write_snapshot(
        snapshot_store(settings),
        report,
        source=source,
        params=params,
        notes=notes,
        licence=licence,
    )
    return IngestResult(manifest=manifest, report=report)


def write_snapshot(
    snapshots: SnapshotStore,
    report: ValidationReport,
    *,
    source: str,
    params: dict[str, Any] | None = None,
    notes: dict[str, Any] | None = None,
    licence: SourceLicence | None = None,
) -> SnapshotManifest:
    """Snapshot a validated batch, child of the newest snapshot of the same source.

    Distribution changes against that parent are recorded as warnings in the manifest, with the
    rows' licence and the personal data masked in them (masking again here is a no-op for rows
    that came through ``validate_titles``, and a safety net for any that did not).

    Raises:
        UndeclaredLicenceError: Nobody declared the rows' licence; nothing is written.
    """
    resolved = (
        licence
        if licence is not None
        else _stored_rows_licence(snapshots, source, params or {})
        if source in ("snapshot", "window") and not (params or {}).get("licence")
        else licence_for(source, params)
    )
    report = ValidationReport(accepted=mask_frame(report.accepted), rejected=report.rejected)
    if not report.rejected.empty:
        report = ValidationReport(accepted=report.accepted, rejected=mask_frame(report.rejected))
    parent = snapshots.latest(source)
    warnings = (
        distribution_warnings(report.accepted, snapshots.read(parent.snapshot_id))
        if parent is not None and not report.accepted.empty
        else []
    )
    return snapshots.write(
        report,
        source=source,
        params=params,
        parent=parent.snapshot_id if parent else None,
        notes=notes,
        warnings=warnings,
        licence=resolved,
        personal_data_masked=masked_counts(report.accepted, report.rejected),
    )


def _stored_rows_licence(
    snapshots: SnapshotStore, source: str, params: dict[str, Any]
) -> SourceLicence:
    """The licence of rows re-read from snapshots: that snapshot's, or the window's strictest."""
    if source == "snapshot":
        sid = params.get("snapshot_id")
        manifest = snapshots.manifest(str(sid)) if sid else snapshots.latest()
        manifests = [manifest] if manifest is not None else []
    else:
        manifests = snapshots.list()
    return derived_licence(m.licence or licence_for(m.source, m.params) for m in manifests)


def overlay(previous: pd.DataFrame, changed: pd.DataFrame) -> pd.DataFrame:
    """The previous snapshot's rows with ``changed`` rows replacing those with the same id."""
    kept = previous[~previous["title_id"].isin(set(changed["title_id"]))]
    return pd.concat([kept, changed], ignore_index=True)


def fetch_batch(
    source: TitleSource,
    settings: Settings,
    *,
    incremental: bool = False,
    progress: ProgressCallback = no_progress,
) -> tuple[pd.DataFrame, SourceBatch]:
    """Fetch from ``source``; incrementally, lay the changed titles over the last snapshot.

    Returns:
        The rows to validate and the batch as the source returned it.
    """
    previous = snapshot_store(settings).latest(source.name) if incremental else None
    since: datetime | None = None
    if previous is not None:
        as_of = previous.params.get("as_of")
        since = datetime.fromisoformat(as_of) if as_of else previous.created_at
    batch = source.fetch(since=since, progress=progress)
    frame = batch.titles
    if batch.incremental and previous is not None:
        frame = overlay(snapshot_store(settings).read(previous.snapshot_id), batch.titles)
        batch.notes["incremental"] = {
            "base_snapshot": previous.snapshot_id,
            "changed_titles": len(batch.titles),
        }
    return frame, batch


def ingest_source(
    source: TitleSource,
    settings: Settings,
    *,
    incremental: bool = False,
    max_reject_rate: float | None = None,
    progress: ProgressCallback = no_progress,
) -> IngestResult:
    """Fetch from a source, validate, quarantine, snapshot (all or nothing).

    A source that fails midway raises before anything is written, so no partial snapshot exists.

    Raises:
        UndeclaredLicenceError: The source declares no licence; nothing is fetched.
    """
    licence = licence_for(source.name, None, getattr(source, "licence", None))
    frame, batch = fetch_batch(source, settings, incremental=incremental, progress=progress)
    return ingest_frame(
        frame,
        settings,
        source=source.name,
        params={**batch.params, "incremental": incremental},
        max_reject_rate=max_reject_rate,
        notes=batch.notes,
        validation_progress=lambda done, total: progress("validate", done, total),
        licence=batch.licence or licence,
    )


def feature_store(settings: Settings) -> TitleFeatureStore:
    """The environment's Feast store.

    Locally, everything lives in ``<home>/feast``; in the cluster profile the registry is on S3,
    the online store is Redis and the offline rows are kept next to the snapshots.
    """
    from trending.features.store import open_feature_store

    local = settings.profile == "local"
    return open_feature_store(
        Path(settings.feature_repo),
        settings.feature_store_yaml,
        settings.feature_store_dir if local else None,
        data_store_uri(settings),
    )


def publish_features(settings: Settings, snapshot_id: str) -> int:
    """Add a snapshot's titles to the Feast offline source, apply the repo, materialize online."""
    return feature_store(settings).publish(snapshot_store(settings).read(snapshot_id))
