"""Feast round-trip: the features training reads are the features serving reads."""

from __future__ import annotations

import pandas as pd
import pytest

from trending.features import texts_of
from trending.ingest import feature_store, ingest_frame, publish_features
from trending.synthetic import generate_titles

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
    for offline_row, online_row in zip(historical.head(10).to_dict("records"), online, strict=False):
        assert online_row["plot"] == offline_row["plot"]
        assert list(online_row["reviews"]) == list(offline_row["reviews"])
        assert online_row["plot_chars"] == len(offline_row["plot"])
    # The model input text is built the same way from both paths.
    assert texts_of(historical.head(10)) == texts_of(pd.DataFrame(online[:10]))
