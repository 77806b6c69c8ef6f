"""The cluster Feast configuration: every ${VAR} the YAML names must come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from trending.features.store import FeatureStoreConfigError, TitleFeatureStore, missing_placeholders

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO / "feature_repo" / "feature_store.cluster.yaml"
CLUSTER_ENV = {
    "FEAST_REGISTRY_BUCKET": "trending",
    "REDIS_HOST": "trending-redis",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "",  # set, possibly empty (a Redis without auth)
}


def test_the_cluster_yaml_names_only_settings_and_the_redis_secret(monkeypatch):
    for name in CLUSTER_ENV:
        monkeypatch.delenv(name, raising=False)
    assert missing_placeholders(CLUSTER_YAML) == sorted(CLUSTER_ENV)
    for name, value in CLUSTER_ENV.items():
        monkeypatch.setenv(name, value)
    assert missing_placeholders(CLUSTER_YAML) == []
    assert "password=${REDIS_PASSWORD}" in CLUSTER_YAML.read_text()  # never a value


def test_an_unset_variable_is_a_clear_error_before_feast_connects(monkeypatch, tmp_path):
    for name, value in CLUSTER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_HOST")
    monkeypatch.setenv("REDIS_PORT", "")
    with pytest.raises(
        FeatureStoreConfigError, match="needs REDIS_HOST, REDIS_PORT in the environment"
    ):
        TitleFeatureStore(REPO / "feature_repo", tmp_path, CLUSTER_YAML.name)
