"""Reproducible training: same snapshot, seed and code version give the same bundle hash."""

from __future__ import annotations

import pytest

from trending.data.synthetic import generate_titles
from trending.modelling.bundle import reproducibility_hash
from trending.modelling.training import train_bundle

SMALL = {
    "xgboost": {"n_estimators": 15, "max_depth": 3, "max_features": 2000, "stack_folds": 2},
    "linear": {"max_features": 2000},
    "prior": {},
}


@pytest.fixture(scope="module")
def train_rows():
    return generate_titles(160, seed=31)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_same_snapshot_seed_and_code_give_the_same_bundle_hash(
    family, train_rows, tmp_path, monkeypatch
):
    # The same code version by construction: others commit to this checkout while tests run.
    monkeypatch.setattr("trending.modelling.training.code_version", lambda: "abc1234")

    def train(folder: str, seed: int) -> str:
        manifest = train_bundle(
            train_rows,
            tmp_path / folder,
            family=family,
            params=SMALL[family],
            data_snapshot_id="snap-repro",
            seed=seed,
        )
        return reproducibility_hash(manifest)

    first, second = train("a", 7), train("b", 7)
    assert first == second
    if family != "prior":  # the prior has no randomness; the others must depend on the seed
        assert train("c", 8) != first


def test_the_hash_ignores_time_but_not_what_training_decided(train_rows, tmp_path):
    manifest = train_bundle(train_rows, tmp_path / "m", family="prior", data_snapshot_id="s")
    later = manifest.model_copy(
        update={
            "metrics": {**manifest.metrics, "train_seconds": 99.0},
            "created_at": manifest.created_at.replace(year=2030),
        }
    )
    moved = manifest.model_copy(update={"thresholds": [t + 0.01 for t in manifest.thresholds]})
    other_data = manifest.model_copy(update={"data_snapshot_id": "other"})
    assert reproducibility_hash(later) == reproducibility_hash(manifest)
    assert reproducibility_hash(moved) != reproducibility_hash(manifest)
    assert reproducibility_hash(other_data) != reproducibility_hash(manifest)
