"""The semantic drift detector: what it sees that the TF-IDF KS test cannot, and its numbers.

The gap: plots whose words are exactly those of normal plots, with who does what to whom
reversed ("a detective hunts a serial killer" -> "a serial killer hunts a detective"). Every
plot's bag of words is unchanged, so the TF-IDF representation (and the KS test on it) is
identical to that of normal traffic; what the stories are about has changed, and the MMD test
on sentence embeddings says so.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import (
    FEATURE_DETECTOR,
    SEMANTIC_DETECTOR,
    DriftMonitor,
    MMDTest,
    fit_drift_detector,
    load_drift_detector,
    median_bandwidth,
)

pytestmark = pytest.mark.slow  # loads MiniLM and embeds ~1,500 plots on the CPU

GENRES = list(DEFAULT_GENRES)
HEROES = ["a detective", "a nurse", "a young teacher", "a firefighter", "a village priest",
          "a retired judge", "a park ranger", "a pilot", "a scientist", "a lawyer"]  # fmt: skip
THREATS = ["a serial killer", "a gang of smugglers", "a hungry wolf", "a corrupt mayor",
           "a ghost", "a drug cartel", "an escaped convict", "a cult leader", "a hacker",
           "a giant shark"]  # fmt: skip
ACTIONS = ["hunts", "protects", "follows", "confronts", "rescues", "betrays", "escapes from",
           "outwits"]  # fmt: skip
PLACES = ["in a small town", "across a frozen lake", "inside an old hospital", "on a night train",
          "in the desert", "at a summer camp"]  # fmt: skip


def plots(n: int, seed: int, *, reversed_roles: bool = False) -> list[str]:
    """Template plots: a hero acts on a threat (or, reversed, the threat on the hero)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        hero, threat = HEROES[rng.integers(10)], THREATS[rng.integers(10)]
        action, place = ACTIONS[rng.integers(8)], PLACES[rng.integers(6)]
        first, second = (threat, hero) if reversed_roles else (hero, threat)
        out.append(f"{first.capitalize()} {action} {second} {place}.")
    return out


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    reference = plots(1000, seed=1)
    scores = np.zeros((len(reference), len(GENRES)))
    out = tmp_path_factory.mktemp("bundle")
    fit_drift_detector(
        reference, scores, out, genres=GENRES, backend="scipy", semantic=True, n_components=16
    )
    return load_drift_detector(out)


def _outcomes(detector, texts: list[str]):
    monitor = DriftMonitor(lambda m, v: detector, window_size=len(texts), min_window=50)
    monitor.observe_requests("m", "1", [(t, []) for t in texts])
    return monitor.score()[("m", "1")].detectors


def test_role_reversal_keeps_every_bag_of_words_so_tfidf_cannot_differ(detector) -> None:
    normal, reversed_roles = plots(500, seed=2), plots(500, seed=2, reversed_roles=True)
    assert normal != reversed_roles
    assert [sorted(p.lower().split()) for p in normal] == [
        sorted(p.lower().split()) for p in reversed_roles
    ]
    np.testing.assert_allclose(detector.encode(normal), detector.encode(reversed_roles), atol=1e-6)


def test_semantic_detector_catches_a_topic_shift_the_tfidf_ks_test_misses(detector) -> None:
    normal = _outcomes(detector, plots(500, seed=3))
    shifted = _outcomes(detector, plots(500, seed=3, reversed_roles=True))
    assert not normal[SEMANTIC_DETECTOR].is_drift, normal
    assert not normal[FEATURE_DETECTOR].is_drift, normal
    assert not shifted[FEATURE_DETECTOR].is_drift, "TF-IDF cannot see word order"
    assert shifted[FEATURE_DETECTOR].p_value == normal[FEATURE_DETECTOR].p_value
    assert shifted[SEMANTIC_DETECTOR].is_drift, shifted
    assert shifted[SEMANTIC_DETECTOR].distance > 5 * max(normal[SEMANTIC_DETECTOR].distance, 1e-4)


def test_the_detector_round_trips_through_the_bundle(detector, tmp_path: Path) -> None:
    assert detector.semantic is not None
    assert detector.semantic.reference.shape == (500, 384)
    np.testing.assert_allclose(
        detector.semantic.sigma, median_bandwidth(detector.semantic.reference), rtol=1e-5
    )


@pytest.mark.skipif(importlib.util.find_spec("alibi_detect") is None, reason="no alibi-detect")
def test_mmd_numbers_match_alibi_detects_mmddrift() -> None:
    from alibi_detect.cd import MMDDrift

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(60, 8)).astype(np.float32)
    for shift in (0.0, 0.8):
        window = (rng.normal(size=(40, 8)) + shift).astype(np.float32)
        ours = MMDTest(reference, n_permutations=200).score(window)
        theirs = MMDDrift(reference, backend="pytorch", p_val=0.05, n_permutations=200).predict(
            window
        )["data"]
        assert ours.distance == pytest.approx(float(theirs["distance"]), rel=1e-3, abs=1e-5)
        assert abs(ours.p_value - float(theirs["p_val"])) <= 0.1  # different random permutations
