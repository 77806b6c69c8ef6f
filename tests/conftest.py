"""Shared fixtures: small real data, settings in a temp folder, a quickly trained bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trending.data.synthetic import generate_titles
from trending.modelling.training import split_labelled, train_bundle
from trending.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# Small but real models: enough signal on synthetic data, seconds to train.
FAST_XGBOOST = {"n_estimators": 25, "max_depth": 3, "max_features": 2000}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Local-profile settings whose state lives in a temp folder."""
    return Settings(home=tmp_path / "home", feature_repo=REPO_ROOT / "feature_repo")


@pytest.fixture(scope="session")
def titles():
    """400 synthetic titles (seeded)."""
    return generate_titles(400, seed=11)


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory, titles) -> Path:
    """A small XGBoost bundle trained once per session."""
    directory = tmp_path_factory.mktemp("bundle")
    train, _ = split_labelled(titles, test_size=0.2, seed=3)
    train_bundle(train, directory, params=FAST_XGBOOST, data_snapshot_id="snap-test")
    return directory


@pytest.fixture
def fast_params_json() -> str:
    """FAST_XGBOOST as the pipelines' params_json parameter."""
    return json.dumps(FAST_XGBOOST)
