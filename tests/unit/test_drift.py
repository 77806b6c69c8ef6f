"""Drift detection core: fit, store in a bundle, load, score windows (both backends)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from trending.data.synthetic import DriftKnobs, generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.modelling.bundle import read_manifest, verify_bundle
from trending.monitoring.drift import (
    DriftError,
    DriftMonitor,
    DriftWindow,
    add_drift_detector,
    fit_drift_detector,
    load_drift_detector,
    skew_feature_values,
)

GENRES = list(DEFAULT_GENRES)
DRIFT = DriftKnobs(vocabulary_shift=0.5, genre_prior_shift=1.0, text_length_scale=1.5)


def _one_hot(frame) -> np.ndarray:
    return np.array([[1.0 if g in labels else 0.0 for g in GENRES] for labels in frame["genres"]])


def _pairs(frame):
    return list(zip(frame["plot"], frame["reviews"], strict=True))


@pytest.fixture(scope="module")
def reference():
    return generate_titles(800, seed=1)


def _fit(tmp_path: Path, reference, backend: str = "scipy") -> Path:
    fit_drift_detector(
        texts_of(reference),
        _one_hot(reference),
        tmp_path,
        genres=GENRES,
        backend=backend,
        reference_skew=skew_feature_values(_pairs(reference)),
    )
    return tmp_path


def _score(detector, frame, size: int = 400):
    monitor = DriftMonitor(lambda m, v: detector, window_size=size, min_window=50)
    monitor.observe_requests("m", "1", _pairs(frame))
    monitor.observe_predictions("m", "1", list(frame["genres"]))
    return monitor.score()[("m", "1")]


@pytest.fixture(scope="module")
def scipy_detector(tmp_path_factory, reference):
    return load_drift_detector(_fit(tmp_path_factory.mktemp("b"), reference))


def test_same_distribution_is_not_drift(scipy_detector) -> None:
    result = _score(scipy_detector, generate_titles(400, seed=5))
    assert set(result.detectors) == {"features", "predictions"}
    assert not result.is_drift, result
    assert all(v < 0.2 for v in result.skew.values()), result.skew


def test_drifted_traffic_is_drift_on_both_detectors(scipy_detector) -> None:
    result = _score(scipy_detector, generate_titles(400, seed=5, drift=DRIFT))
    assert result.detectors["features"].is_drift
    assert result.detectors["predictions"].is_drift
    assert result.detectors["features"].p_value < 0.05
    assert result.skew["plot_chars"] > 0.3  # longer plots: training/serving skew


def test_windows_below_the_minimum_are_not_scored(scipy_detector) -> None:
    result = _score(scipy_detector, generate_titles(20, seed=5, drift=DRIFT))
    assert result.detectors == {} and result.window_size == 20


def test_window_is_bounded_and_keeps_the_newest_rows() -> None:
    window = DriftWindow(size=10)
    window.add_requests(np.arange(25, dtype=np.float32).reshape(25, 1), np.zeros((25, 2)))
    features, _, predictions = window.snapshot()
    assert len(window) == 10 and features[:, 0].tolist() == list(range(15, 25))
    assert predictions is None


def test_monitor_keeps_at_most_max_versions(scipy_detector) -> None:
    loads = []

    def load(model, version):
        loads.append(version)
        return scipy_detector

    monitor = DriftMonitor(load, window_size=100, min_window=10, max_versions=2)
    for version in ("1", "2", "3", "1"):
        monitor.observe_predictions("m", version, [["Drama"]])
    assert set(monitor.sizes()) == {("m", "3"), ("m", "1")}
    assert loads == ["1", "2", "3", "1"]  # version 1 was evicted, then loaded again


@pytest.mark.slow  # trains the shared session bundle when run alone
def test_add_drift_detector_updates_the_manifest(
    trained_bundle: Path, tmp_path: Path, titles
) -> None:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    add_drift_detector(bundle, titles)
    manifest = verify_bundle(bundle)
    assert "drift/config.json" in manifest.files and "drift/reference.npz" in manifest.files
    detector = load_drift_detector(bundle)
    assert detector.genres == read_manifest(bundle).genres
    assert set(detector.skew_reference) == {"plot_chars", "review_count"}


def test_missing_detector_and_bad_inputs_say_what_to_do(tmp_path: Path, reference) -> None:
    with pytest.raises(DriftError, match="add_drift_detector"):
        load_drift_detector(tmp_path)
    with pytest.raises(DriftError, match="one row per reference text"):
        fit_drift_detector(texts_of(reference), np.zeros((3, 2)), tmp_path, genres=GENRES)
    with pytest.raises(DriftError, match="unknown drift backend"):
        fit_drift_detector(
            texts_of(reference), _one_hot(reference), tmp_path, genres=GENRES, backend="nope"
        )  # type: ignore[arg-type]


@pytest.mark.slow  # imports torch through alibi-detect
@pytest.mark.skipif(
    importlib.util.find_spec("alibi_detect") is None, reason="alibi-detect not installed"
)
def test_alibi_backend_round_trips_and_agrees_with_scipy(
    tmp_path: Path, reference, scipy_detector
) -> None:
    detector = load_drift_detector(_fit(tmp_path, reference, backend="alibi"))
    assert detector.backend_name == "alibi"
    assert (tmp_path / "drift" / "alibi" / "features" / "config.toml").is_file()
    calm = _score(detector, generate_titles(400, seed=5))
    drifted = _score(detector, generate_titles(400, seed=5, drift=DRIFT))
    assert not calm.is_drift and drifted.detectors["features"].is_drift
    assert drifted.detectors["predictions"].is_drift
    scipy_result = _score(scipy_detector, generate_titles(400, seed=5, drift=DRIFT))
    assert drifted.detectors["features"].distance == pytest.approx(
        scipy_result.detectors["features"].distance, abs=1e-3
    )


@pytest.mark.slow  # imports torch through alibi-detect
@pytest.mark.skipif(
    importlib.util.find_spec("alibi_detect") is None, reason="alibi-detect not installed"
)
def test_alibi_backend_scores_a_model_that_never_predicts_some_genres(tmp_path: Path) -> None:
    from trending.monitoring.drift.backends import AlibiDriftBackend

    rng = np.random.default_rng(3)
    x_ref = rng.normal(size=(300, 4)).astype(np.float32)
    y_ref = (rng.random((300, 5)) < 0.3).astype(np.int64)
    y_ref[:, 4] = 0  # a genre the model never predicts (ChiSquareDrift alone raises on it)
    backend = AlibiDriftBackend.fit(x_ref, y_ref, p_val=0.05)
    (tmp_path / "alibi").mkdir()
    backend.save(tmp_path)
    loaded = AlibiDriftBackend.load(tmp_path, p_val=0.05)

    calm = y_ref[:100].copy()
    assert not loaded.predictions(calm).is_drift
    newly_predicted = calm.copy()
    newly_predicted[:60, 4] = 1  # the never-predicted genre appears in 60 % of the window
    assert loaded.predictions(newly_predicted).is_drift
