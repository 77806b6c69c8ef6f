"""New features quickly: one declaration adds a feature that reaches training and serving.

The test declares a toy feature (words in the title) the way docs/data.md "Adding a feature"
says, as one more ``DerivedFeature``, against a copy of the Feast repository, and follows it
through the real path: featurization -> Feast offline source -> ``feast apply`` of the repo ->
historical retrieval (what training reads) and the online store (what serving reads).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from trending.data.ingest import ingest_frame, snapshot_store
from trending.data.synthetic import generate_titles
from trending.features import definitions
from trending.features.definitions import DerivedFeature, FeatureRuleError
from trending.features.featurize import title_features
from trending.features.store import TitleFeatureStore

pytestmark = pytest.mark.integration

REPO_MODULES = ("entities", "data_sources", "feature_views", "feature_services")
TITLE_WORDS = DerivedFeature(
    "title_words",
    "int64",
    "Words in the title (toy feature of the new-feature recipe).",
    lambda f: f["title"].fillna("").astype(str).str.split().map(len),
    minimum=0,
    maximum=50,
)


@pytest.fixture
def feast_repo(tmp_path, monkeypatch):
    """A copy of feature_repo/ whose modules Feast imports afresh (not the cached originals)."""
    repo = tmp_path / "feature_repo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "feature_repo", repo)
    for name in REPO_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield repo
    for name in REPO_MODULES:
        sys.modules.pop(name, None)


def test_a_declared_feature_reaches_training_and_serving_with_equal_values(
    settings, feast_repo, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        definitions, "DERIVED_FEATURES", (*definitions.DERIVED_FEATURES, TITLE_WORDS)
    )
    titles = generate_titles(40, seed=8)
    snapshot = ingest_frame(titles, settings, source="synthetic").manifest
    rows = snapshot_store(settings).read(snapshot.snapshot_id)

    store = TitleFeatureStore(feast_repo, tmp_path / "feast", "feature_store.yaml")
    store.publish(rows)
    training = store.historical(rows[["title_id", "event_timestamp"]]).set_index("title_id")
    serving = {r["title_id"]: r for r in store.online(list(rows["title_id"]))}
    expected = rows.set_index("title_id")["title"].str.split().map(len)

    assert "title_words" in training.columns
    assert training["title_words"].astype(int).to_dict() == expected.to_dict()
    assert {t: int(r["title_words"]) for t, r in serving.items()} == expected.to_dict()
    field = store.store.get_feature_view("title_text")
    assert {f.name: f.description for f in field.features}["title_words"] == TITLE_WORDS.description


def test_the_declared_rule_stops_a_broken_transformation(monkeypatch):
    broken = DerivedFeature(
        "title_words", "int64", "broken", lambda f: f["plot"].map(lambda _: -1), minimum=0
    )
    monkeypatch.setattr(definitions, "DERIVED_FEATURES", (*definitions.DERIVED_FEATURES, broken))
    with pytest.raises(FeatureRuleError, match=r"title_words is outside \[0, None\].*synthetic:"):
        title_features(generate_titles(5, seed=1))


def test_the_shipped_repository_serves_every_declared_feature(feast_repo, tmp_path):
    store = TitleFeatureStore(feast_repo, tmp_path / "feast", "feature_store.yaml")
    store.apply()
    served = {f.name for f in store.store.get_feature_view("title_text").features}
    assert {f.name for f in definitions.DERIVED_FEATURES} <= served
