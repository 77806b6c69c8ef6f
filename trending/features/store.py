"""Feast for training and serving: apply the repo, materialize, historical and online reads.

The definitions live in ``feature_repo/``; the environment's ``feature_store.yaml`` there uses
paths relative to a state folder, which this module passes to Feast as ``repo_path``.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from trending.features.featurize import FEATURE_COLUMNS, title_features

FEATURE_SERVICE = "genre_classifier_v1"
SOURCE_FILE = "title_features.parquet"


class TitleFeatureStore:
    """The project's Feast store for one environment."""

    def __init__(self, repo: Path, state_dir: Path, yaml_name: str = "feature_store.yaml") -> None:
        from feast import FeatureStore
        from feast.repo_config import load_repo_config

        self.repo = Path(repo).resolve()
        self.state_dir = Path(state_dir).resolve()
        yaml_file = self.repo / yaml_name
        if not yaml_file.is_file():
            raise FileNotFoundError(
                f"{yaml_file} not found: point TRENDING_FEATURE_REPO at feature_repo/"
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
        path = self.state_dir / SOURCE_FILE
        rows = title_features(titles)
        if path.is_file():
            rows = pd.concat([pd.read_parquet(path), rows], ignore_index=True)
            rows = rows.drop_duplicates(["title_id", "event_timestamp"], keep="last")
        rows = rows.sort_values(["title_id", "event_timestamp"], kind="stable")
        tmp = path.with_suffix(".tmp")
        rows.to_parquet(tmp, index=False)
        tmp.replace(path)
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
        source = pd.read_parquet(self.state_dir / SOURCE_FILE, columns=["event_timestamp"])
        start = source["event_timestamp"].min().to_pydatetime()
        # Cover rows stamped later than now (e.g. an as-of time set ahead) as well.
        latest = source["event_timestamp"].max().to_pydatetime() + timedelta(seconds=1)
        end = end or max(datetime.now(UTC), latest)
        self.store.materialize(start_date=start, end_date=end)
        return len(source)

    def historical(self, entities: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time-correct features for (title_id, event_timestamp[, labels]) rows."""
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
