"""A trained bundle loads, predicts sensibly, and refuses to load when tampered with."""

from __future__ import annotations

import json
import shutil

import pytest

from trending.modelling.bundle import BundleError, read_manifest, verify_bundle
from trending.modelling.families import GenrePredictor


def test_manifest_records_what_serving_and_audit_need(trained_bundle):
    manifest = read_manifest(trained_bundle)
    assert manifest.model_family == "xgboost"
    assert len(manifest.genres) == len(manifest.thresholds) == 19
    assert manifest.data_snapshot_id == "snap-test"
    assert manifest.format_version == 2
    assert set(manifest.files) == {
        "model/tfidf.json",
        "model/tfidf.npz",
        "model/logistic.json",
        "model/logistic.npz",
        "model/columns.npz",
        "model/booster.json",
    }
    assert 0.0 <= manifest.metrics["validation"]["micro_f1"] <= 1.0


def test_predictor_finds_the_obvious_genre(trained_bundle):
    predictor = GenrePredictor.from_bundle(trained_bundle)
    [horror, crime] = predictor.predict_titles(
        [
            ("A haunted house, a possessed demon, a curse and a night of terror and blood.", []),
            (
                "A detective and the police chase a gangster after a heist,"
                " a robbery and a murder.",
                [],
            ),
        ]
    )
    assert set(horror.scores) == set(predictor.genres)
    assert max(horror.scores, key=horror.scores.get) == "Horror"
    assert max(crime.scores, key=crime.scores.get) == "Crime"
    assert "Horror" in horror.genres


def test_corrupt_file_is_refused(trained_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(trained_bundle, copy)
    with open(copy / "model" / "booster.json", "a") as f:
        f.write(" ")
    with pytest.raises(BundleError, match=r"checksum of model/booster\.json"):
        GenrePredictor.from_bundle(copy)


def test_missing_file_and_bad_manifest_are_refused(trained_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(trained_bundle, copy)
    (copy / "model" / "logistic.npz").unlink()
    with pytest.raises(BundleError, match=r"logistic\.npz is missing"):
        verify_bundle(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["thresholds"] = manifest["thresholds"][:-1]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="18 thresholds for 19 genres"):
        read_manifest(copy)
