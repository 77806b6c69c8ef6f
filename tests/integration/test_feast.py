"""Feast round-trip: the features training reads are the features serving reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from trending.data.ingest import feature_store, ingest_frame, publish_features
from trending.data.synthetic import generate_titles
from trending.features.featurize import FEATURE_COLUMNS, texts_of

pytestmark = pytest.mark.integration


def test_historical_and_online_features_agree(settings):
    titles = generate_titles(60, seed=21)
    snapshot = ingest_frame(titles, settings, source="synthetic").manifest
    assert publish_features(settings, snapshot.snapshot_id) == 60
    store = feature_store(settings)

    entities = titles[["title_id", "event_timestamp", "genres"]]
    historical = store.historical(entities)
    ids = historical["title_id"].tolist()
    online = store.online([*ids[:10], "synthetic:does-not-exist"])

    assert len(historical) == 60
    assert online[-1] is None
    for offline_row, online_row in zip(
        historical.head(10).to_dict("records"), online, strict=False
    ):
        assert online_row["plot"] == offline_row["plot"]
        assert list(online_row["reviews"]) == list(offline_row["reviews"])
        assert online_row["plot_chars"] == len(offline_row["plot"])
    # The model input text is built the same way from both paths.
    assert texts_of(historical.head(10)) == texts_of(pd.DataFrame(online[:10]))


def test_training_and_serving_get_identical_values_for_every_feature(settings):
    titles = generate_titles(30, seed=22)
    snapshot = ingest_frame(titles, settings, source="synthetic").manifest
    publish_features(settings, snapshot.snapshot_id)
    store = feature_store(settings)
    historical = store.historical(titles[["title_id", "event_timestamp"]])
    online = {row["title_id"]: row for row in store.online(historical["title_id"].tolist())}
    for offline_row in historical.to_dict("records"):
        served = online[offline_row["title_id"]]
        for column in FEATURE_COLUMNS:
            expected = offline_row[column]
            expected = list(expected) if column == "reviews" else expected
            got = list(served[column]) if column == "reviews" else served[column]
            assert got == expected, (offline_row["title_id"], column)


def test_point_in_time_retrieval_returns_the_version_valid_then(settings):
    t1 = datetime(2024, 1, 1, tzinfo=UTC)
    t2 = datetime(2024, 6, 1, tzinfo=UTC)
    v1 = generate_titles(3, seed=23, start=t1)
    v2 = v1.copy()
    v2.loc[0, "plot"] = "A rewritten summary: the heist crew turns on itself after the vault opens."
    v2["event_timestamp"] = t2
    for version in (v1, v2):
        sid = ingest_frame(version, settings, source="synthetic").manifest.snapshot_id
        publish_features(settings, sid)
    store = feature_store(settings)
    title_id = v1.loc[0, "title_id"]

    asked = pd.DataFrame(
        {
            "title_id": [title_id] * 3,
            "event_timestamp": [
                t1 - timedelta(days=1),
                t1 + timedelta(days=30),
                t2 + timedelta(days=1),
            ],
        }
    )
    got = (
        store.store.get_historical_features(
            entity_df=asked, features=store.store.get_feature_service("genre_classifier_v1")
        )
        .to_df()
        .sort_values("event_timestamp")
    )
    plot_at = {
        row["event_timestamp"]: row["plot"]
        for row in got.to_dict("records")
        if pd.notna(row["plot"])
    }
    assert t1 - timedelta(days=1) not in plot_at  # before the title existed: no value
    assert plot_at[t1 + timedelta(days=30)] == v1.loc[0, "plot"]  # first version, t1..t2
    assert plot_at[t2 + timedelta(days=1)] == v2.loc[0, "plot"]  # the rewrite, from t2
    assert store.online([title_id])[0]["plot"] == v2.loc[0, "plot"]  # serving: the newest
