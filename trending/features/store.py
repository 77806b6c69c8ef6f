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
import os
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from trending.features.featurize import FEATURE_COLUMNS, title_features

if TYPE_CHECKING:
    from trending.registry.objectstore import ObjectStore

FEATURE_SERVICE = "genre_classifier_v1"
SOURCE_FILE = "title_features.parquet"
# Where the offline rows live in an object store (cluster environment).
OFFLINE_KEY = f"feast/{SOURCE_FILE}"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FeatureStoreConfigError(ValueError):
    """The environment's feature_store YAML cannot be loaded as configured."""


def missing_placeholders(yaml_file: Path) -> list[str]:
    """The ``${VAR}`` names in a Feast YAML that the environment leaves unset or empty.

    Feast expands the variables with ``os.path.expandvars``, which keeps an unset one as the
    literal text ``${VAR}``; that would surface later as an unreachable host. REDIS_PASSWORD may
    be empty (a Redis without auth), but it must be set.
    """
    names = set(_PLACEHOLDER.findall(yaml_file.read_text()))
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

    def materialize(self, end: datetime | None = None) -> int:
        """Load the latest feature value of every title into the online store.

        Returns:
            The number of offline rows in the materialized window.
        """
        source = pd.read_parquet(self.pull_source(), columns=["event_timestamp"])
        start = source["event_timestamp"].min().to_pydatetime()
        # Cover rows stamped later than now (e.g. an as-of time set ahead) as well.
        latest = source["event_timestamp"].max().to_pydatetime() + timedelta(seconds=1)
        end = end or max(datetime.now(UTC), latest)
        self.store.materialize(start_date=start, end_date=end)
        return len(source)

    def historical(self, entities: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time-correct features for (title_id, event_timestamp[, labels]) rows."""
        self.pull_source()
        service = self.store.get_feature_service(FEATURE_SERVICE)
        frame = self.store.get_historical_features(entity_df=entities, features=service).to_df()
        return frame.sort_values("title_id").reset_index(drop=True)

    def online(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        """Online features per id, in order; None for an id the store does not know."""
        service = self.store.get_feature_service(FEATURE_SERVICE)
        response = self.store.get_online_features(
            features=service, entity_rows=[{"title_id": t} for t in title_ids]
        ).to_dict()
        rows: list[dict[str, Any] | None] = []
        for i, title_id in enumerate(title_ids):
            row = {c: response[c][i] for c in FEATURE_COLUMNS}
            rows.append(None if row["plot"] is None else {"title_id": title_id, **row})
        return rows


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
