"""Training-data windows for continuous training: which titles a retraining run learns from."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, get_args

import pandas as pd

from trending.data.snapshots import SnapshotStore

# The one definition of the training-data windows (retraining requests, the trigger, the pipeline).
WindowKind = Literal["fixed", "growing", "drift_selected"]
WINDOW_KINDS: tuple[WindowKind, ...] = get_args(WindowKind)


def select_window(
    snapshots: SnapshotStore,
    kind: WindowKind,
    *,
    days: int = 90,
    since: datetime | None = None,
) -> pd.DataFrame:
    """Titles for a retraining run, newest version of each title across every snapshot.

    Args:
        snapshots: Where the dataset snapshots live.
        kind: ``growing``: everything seen so far; ``fixed``: the last ``days`` days before the
            newest title; ``drift_selected``: only titles at or after ``since`` (drift onset).
        days: Length of the fixed window.
        since: Drift onset for ``drift_selected``.
    """
    if kind not in WINDOW_KINDS:
        raise ValueError(f"unknown window {kind!r}: choose one of {list(WINDOW_KINDS)}")
    if kind == "drift_selected" and since is None:
        raise ValueError("window 'drift_selected' needs the drift onset time (since)")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    manifests = snapshots.list()
    if not manifests:
        raise ValueError("no dataset snapshot yet: ingest data before retraining")
    frames = [snapshots.read(m.snapshot_id) for m in manifests]
    titles = (
        pd.concat(frames, ignore_index=True)
        .sort_values("event_timestamp", kind="stable")
        .drop_duplicates("title_id", keep="last")
    )
    stamps = pd.to_datetime(titles["event_timestamp"], utc=True)
    if kind == "fixed":
        titles = titles[stamps >= stamps.max() - timedelta(days=days)]
    elif kind == "drift_selected":
        onset = pd.Timestamp(since)
        onset = onset.tz_localize("UTC") if onset.tzinfo is None else onset.tz_convert("UTC")
        titles = titles[stamps >= onset]
    return titles.reset_index(drop=True)


def titles_for_training(
    source: str, params: dict[str, object], snapshots: SnapshotStore
) -> pd.DataFrame:
    """Raw titles for a pipeline run from ``source``.

    ``snapshot`` re-reads one snapshot (``params["snapshot_id"]``, default newest);
    ``window`` selects across snapshots (``params``: kind, days, since); any other name is a
    data source from ``trending.data.sources`` (synthetic, file, tmdb) fetched afresh.
    """
    if source == "snapshot":
        sid = params.get("snapshot_id") or (snapshots.list() or [None])[-1]
        if sid is None:
            raise ValueError("no dataset snapshot yet: ingest data first")
        return snapshots.read(sid if isinstance(sid, str) else sid.snapshot_id)
    if source == "window":
        since = params.get("since")
        return select_window(
            snapshots,
            str(params.get("kind", "growing")),  # type: ignore[arg-type]
            days=int(params.get("days", 90)),  # type: ignore[arg-type]
            since=pd.Timestamp(since).to_pydatetime() if since else None,
        )
    from trending.data.sources import open_source

    return open_source(source, params).fetch().titles
