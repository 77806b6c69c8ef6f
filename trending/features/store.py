"""Feast for training and serving: apply the repo, materialize, historical and online reads.

The definitions live in ``feature_repo/``; the environment's ``feature_store*.yaml`` there uses
paths relative to a state folder, which this module passes to Feast as ``repo_path``.

Two environments, one code path:

- local (``feature_store.yaml``): registry, SQLite online store and the offline rows all live in
  the state folder, which persists between runs.
- cluster (``feature_store.cluster.yaml``): the registry is on S3 and the online store is Redis
  (both named in the file through ``${VARS}``); the offline rows are kept in an object store
  (``offline``), and the state folder is scratch space a pod may lose at any time.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from trending.features.featurize import FEATURE_COLUMNS, title_features
from trending.features.online_write import OnlineWriter, cyclic_gc_paused

if TYPE_CHECKING:
    from trending.registry.objectstore import ObjectStore

FEATURE_SERVICE = "genre_classifier_v1"
SOURCE_FILE = "title_features.parquet"
# Where the offline rows live in an object store (cluster environment).
OFFLINE_KEY = f"feast/{SOURCE_FILE}"
FEATURE_VIEW = "title_text"
# What the last materialization wrote: a digest per title (kept next to the offline rows).
WRITTEN_FILE = "online_written.parquet"
WRITTEN_KEY = f"feast/{WRITTEN_FILE}"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FeatureStoreConfigError(ValueError):
    """The environment's feature_store YAML cannot be loaded as configured."""


def missing_placeholders(yaml_file: Path) -> list[str]:
    """The ``${VAR}`` names in a Feast YAML that the environment leaves unset or empty.

    Feast expands the variables with ``os.path.expandvars``, which keeps an unset one as the
    literal text ``${VAR}``; that would surface later as an unreachable host. REDIS_PASSWORD may
    be empty (a Redis without auth), but it must be set.
    """
    lines = (line.partition("#")[0] for line in yaml_file.read_text().splitlines())
    names = set(_PLACEHOLDER.findall("\n".join(lines)))
    return sorted(
        n for n in names if n not in os.environ or (not os.environ[n] and n != "REDIS_PASSWORD")
    )


class TitleFeatureStore:
    """The project's Feast store for one environment."""

    def __init__(
        self,
        repo: Path,
        state_dir: Path,
        yaml_name: str = "feature_store.yaml",
        *,
        offline: ObjectStore | None = None,
    ) -> None:
        """Load the environment's Feast configuration.

        Args:
            repo: The Feast repository (``feature_repo/``).
            state_dir: Folder Feast resolves relative paths against (registry and SQLite
                locally; scratch in the cluster).
            yaml_name: The environment file in ``repo``.
            offline: Object store that keeps the offline rows; None keeps them in ``state_dir``.

        Raises:
            FileNotFoundError: The YAML is not in ``repo``.
            FeatureStoreConfigError: A ``${VAR}`` of the YAML is not set in the environment.
        """
        from feast import FeatureStore
        from feast.repo_config import load_repo_config

        self.repo = Path(repo).resolve()
        self.state_dir = Path(state_dir).resolve()
        self.offline = offline
        yaml_file = self.repo / yaml_name
        if not yaml_file.is_file():
            raise FileNotFoundError(
                f"{yaml_file} not found: point TRENDING_FEATURE_REPO at feature_repo/"
            )
        if missing := missing_placeholders(yaml_file):
            raise FeatureStoreConfigError(
                f"{yaml_file.name} needs {', '.join(missing)} in the environment (settings from "
                "the chart's ConfigMap, REDIS_PASSWORD from the Secret trending-redis)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = load_repo_config(self.repo, yaml_file)
        config.repo_path = self.state_dir
        self.store = FeatureStore(repo_path=str(self.state_dir), config=config)
        self._reader: OnlineFeatureReader | None = None
        self._writer: OnlineWriter | None = None

    def apply(self) -> list[str]:
        """Register the repo's entities, views and services (what `feast apply` does)."""
        from feast.repo_operations import parse_repo

        # Feast imports repo files as top-level modules named relative to the working folder.
        sys.path.insert(0, str(self.repo))
        try:
            with contextlib.chdir(self.repo):
                contents = parse_repo(self.repo)
        finally:
            sys.path.remove(str(self.repo))
        objects: list[Any] = [
            *contents.entities,
            *contents.data_sources,
            *contents.feature_views,
            *contents.feature_services,
        ]
        self.store.apply(objects)
        return sorted(o.name for o in objects)

    def write_source(self, titles: pd.DataFrame) -> Path:
        """Add the feature rows of ``titles`` to the offline source, keeping earlier versions.

        The source is a history: a title whose plot changed has one row per version, each with
        its event time, so historical retrieval returns the version valid at an entity's
        timestamp (point-in-time correctness). A row with the same (title_id, event_timestamp)
        as an earlier one replaces it.
        """
        path = self.pull_source()
        rows = title_features(titles)
        if path.is_file():
            rows = pd.concat([pd.read_parquet(path), rows], ignore_index=True)
            rows = rows.drop_duplicates(["title_id", "event_timestamp"], keep="last")
        rows = rows.sort_values(["title_id", "event_timestamp"], kind="stable")
        tmp = path.with_suffix(".tmp")
        rows.to_parquet(tmp, index=False)
        tmp.replace(path)
        if self.offline is not None:
            self.offline.put_file(OFFLINE_KEY, path)
        return path

    def pull_source(self) -> Path:
        """The offline rows' local file, fetched from the offline object store when there is one."""
        from trending.registry.objectstore import ObjectNotFoundError

        path = self.state_dir / SOURCE_FILE
        if self.offline is not None:
            with contextlib.suppress(ObjectNotFoundError):
                self.offline.get_file(OFFLINE_KEY, path)
        return path

    def publish(self, titles: pd.DataFrame) -> int:
        """Serve ``titles``: add them to the offline source, apply the repo, materialize online."""
        self.write_source(titles)
        self.apply()
        self.materialize()
        return len(titles)

    def materialize(self, end: datetime | None = None, *, full: bool = False) -> int:
        """Write each title's latest feature row into the online store, if it changed.

        The rows come from the offline source: per title, the row with the latest event time
        before ``end``. Only the rows whose values differ from what the previous run wrote are
        written (a digest per title is kept in ``online_written.parquet`` beside the source), so
        a re-ingested catalogue costs what changed in it. Event times alone cannot say what
        changed: a file source without dates stamps every row 1970-01-01, and a re-ingested
        title keeps its old stamp with a new plot. ``full`` (or a missing digest file) rewrites
        every row, e.g. after the online store was emptied.

        The rows go to the configured online store's own ``online_write_batch`` in batches
        (:class:`~trending.features.online_write.OnlineWriter`: the feature view from the
        registry, values converted column by column into Feast's protobufs), not through
        ``FeatureStore.write_to_online_store``, whose per-value conversion cost about as much as
        the store's write, nor ``FeatureStore.materialize``, whose offline pull re-reads and
        re-sorts the whole history through dask; the run is recorded as a materialization
        interval in Feast's registry all the same (docs/adr/0020).

        Args:
            end: Rows stamped at or after it are left out (default: now, or later when the
                source holds rows stamped ahead).
            full: Write every title's row, changed or not.

        Returns:
            The number of rows written.
        """
        # A bounded batch whose objects reference counting frees (any cycle waits for the next
        # collection): full collector passes over the whole process would cost as much as the
        # conversion (trending.features.online_write.cyclic_gc_paused).
        with cyclic_gc_paused():
            return self._materialize(end, full)

    def _materialize(self, end: datetime | None, full: bool) -> int:
        """``materialize``'s work (see there)."""
        source = pd.read_parquet(self.pull_source())
        stamps = source["event_timestamp"]
        if not isinstance(stamps.dtype, pd.DatetimeTZDtype):  # write_source keeps UTC times
            stamps = pd.to_datetime(stamps, utc=True)
        latest = stamps.max().to_pydatetime() + timedelta(seconds=1)
        end = end or max(datetime.now(UTC), latest)
        current = (
            source[stamps < pd.Timestamp(end)]
            .sort_values("event_timestamp", kind="stable")
            .drop_duplicates("title_id", keep="last")
            .reset_index(drop=True)
        )
        digests = pd.DataFrame({"title_id": current["title_id"], "digest": _row_digests(current)})
        written_file = self.state_dir / WRITTEN_FILE
        self._pull_written(written_file)
        changed = current
        if not full and written_file.is_file():
            before = pd.read_parquet(written_file)
            merged = digests.merge(before, on="title_id", how="left", suffixes=("", "_before"))
            changed = current[(merged["digest"] != merged["digest_before"]).to_numpy()]
        view = self.store.get_feature_view(FEATURE_VIEW)
        if len(changed):
            if self._writer is None:
                self._writer = OnlineWriter(self.store.config)
            self._writer.write(view, changed)
        self.store.registry.apply_materialization(
            view, self.store.project, stamps.min().to_pydatetime(), end
        )
        tmp = written_file.with_suffix(".tmp")
        digests.to_parquet(tmp, index=False)
        tmp.replace(written_file)
        if self.offline is not None:
            self.offline.put_file(WRITTEN_KEY, written_file)
        return len(changed)

    def _pull_written(self, path: Path) -> None:
        """Fetch the last run's digests from the offline object store, when there is one."""
        from trending.registry.objectstore import ObjectNotFoundError

        if self.offline is not None:
            with contextlib.suppress(ObjectNotFoundError):
                self.offline.get_file(WRITTEN_KEY, path)

    def historical(self, entities: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time-correct features for (title_id, event_timestamp[, labels]) rows."""
        self.pull_source()
        service = self.store.get_feature_service(FEATURE_SERVICE)
        frame = self.store.get_historical_features(entity_df=entities, features=service).to_df()
        return frame.sort_values("title_id").reset_index(drop=True)

    def online(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        """Online features per id, in order; None for an id the store does not know.

        Reads through :class:`OnlineFeatureReader` (the feature service resolved once, the
        online store's own ``online_read`` with its reused connection); ``online_via_sdk`` is
        the same read through ``FeatureStore.get_online_features``, kept for parity checks.
        """
        if self._reader is None:
            self._reader = OnlineFeatureReader(self.store)
        return self._reader.online(title_ids)

    def online_via_sdk(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        """The same rows as ``online``, read by ``FeatureStore.get_online_features``."""
        service = self.store.get_feature_service(FEATURE_SERVICE)
        response = self.store.get_online_features(
            features=service, entity_rows=[{"title_id": t} for t in title_ids]
        ).to_dict()
        rows: list[dict[str, Any] | None] = []
        for i, title_id in enumerate(title_ids):
            row = {c: response[c][i] for c in FEATURE_COLUMNS}
            rows.append(None if row["plot"] is None else {"title_id": title_id, **row})
        return rows


class OnlineFeatureReader:
    """The feature service's online rows, read through Feast's online store class.

    ``FeatureStore.get_online_features`` rebuilds the feature service and its feature views from
    the registry's protobufs on every call (with runtime type checks on each field): ~4-10 ms of
    Python per lookup on these machines before the store is even asked. This reader resolves the
    feature service's projection once (again after the registry's ``cache_ttl_seconds``), then
    asks the configured online store (``RedisOnlineStore``, ``SqliteOnlineStore``, ...) through
    its ``online_read``, on one store instance whose client connection is reused. What it returns
    is what ``get_online_features`` returns (tests/integration/test_feast_fast_paths.py compares
    them); docs/adr/0016-feast-online-reads-and-materialization.md records why.

    Args:
        store: The Feast store (its config and registry).
        feature_service: The feature service the model was trained on.
    """

    def __init__(self, store: Any, feature_service: str = FEATURE_SERVICE) -> None:
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self.store = store
        self.feature_service = feature_service
        self.online_store = get_online_store_from_config(store.config.online_store)
        ttl = getattr(store.config.registry, "cache_ttl_seconds", 600) or 600
        self.refresh_seconds = float(ttl)
        self._views: list[tuple[Any, list[str]]] = []
        self._resolved_at = -math.inf

    def _resolve(self) -> None:
        """Feature views of the service, each with the feature names its projection selects."""
        service = self.store.get_feature_service(self.feature_service)
        views = []
        for projection in service.feature_view_projections:
            view = self.store.get_feature_view(projection.name).with_projection(projection)
            views.append((view, [f.name for f in projection.features]))
        missing = set(FEATURE_COLUMNS) - {name for _, names in views for name in names}
        if missing:
            raise FeatureStoreConfigError(
                f"feature service {self.feature_service} lacks {sorted(missing)}: apply the "
                "feature repository the model was trained with"
            )
        self._views = views
        self._resolved_at = time.monotonic()

    def online(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        """Online features per id, in order; None for an id the store does not know."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        if time.monotonic() - self._resolved_at > self.refresh_seconds:
            self._resolve()
        keys = [
            EntityKey(join_keys=["title_id"], entity_values=[Value(string_val=t)])
            for t in title_ids
        ]
        rows: list[dict[str, Any]] = [{"title_id": t} for t in title_ids]
        for view, names in self._views:
            # A copy: RedisOnlineStore.online_read appends its timestamp key to the list it gets.
            found = self.online_store.online_read(self.store.config, view, keys, list(names))
            for row, (_, values) in zip(rows, found, strict=True):
                values = values or {}
                for name in names:
                    value = values.get(name)
                    row[name] = None if value is None else feast_value_type_to_python_type(value)
        return [None if row.get("plot") is None else row for row in rows]


def _row_digests(rows: pd.DataFrame) -> pd.Series:
    """One 64-bit digest per row over the event time and every served feature value."""
    hashable = rows[["event_timestamp", *FEATURE_COLUMNS]].copy()
    hashable["reviews"] = [_joined(r) for r in hashable["reviews"]]
    # categorize=False: the same hashes without factorizing first (the values are mostly unique).
    return pd.util.hash_pandas_object(hashable, index=False, categorize=False).astype("int64")


def _joined(reviews: Any) -> str:
    """A row's reviews as one string for the digest; None is no reviews."""
    items = [] if reviews is None else reviews.tolist() if hasattr(reviews, "tolist") else reviews
    try:
        return "\x1f".join(items)
    except TypeError:  # not all strings: as str() spells them
        return "\x1f".join(map(str, items))


def open_feature_store(
    feature_repo: str | Path, yaml_name: str, state_dir: str | Path | None, data_uri: str
) -> TitleFeatureStore:
    """The Feast store of a pipeline step or a CLI command.

    Args:
        feature_repo: The Feast repository folder.
        yaml_name: ``feature_store.yaml`` (local) or ``feature_store.cluster.yaml``.
        state_dir: A persistent local state folder (local environment), or empty/None: a fresh
            scratch folder, with the offline rows kept in ``<data_uri>/feast/`` (cluster).
        data_uri: The snapshot store URI, which also keeps the offline rows when scratch is used.
    """
    from trending.registry.objectstore import open_store

    if state_dir:
        return TitleFeatureStore(Path(feature_repo), Path(state_dir), yaml_name)
    scratch = Path(tempfile.mkdtemp(prefix="feast-"))
    return TitleFeatureStore(Path(feature_repo), scratch, yaml_name, offline=open_store(data_uri))
