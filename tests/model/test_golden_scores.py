"""Dependency changes are noticed: served families re-score fixed titles as recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import golden

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded():
    return json.loads(golden.GOLDEN.read_text())


@pytest.fixture(scope="module")
def rescored():
    return golden.current_scores()


def _largest_change(recorded: dict, rescored: dict) -> dict[str, float]:
    return {
        family: float(np.max(np.abs(np.array(rescored[family]) - np.array(scores))))
        for family, scores in recorded["scores"].items()
    }


def test_the_golden_scores_cover_every_served_family_and_the_fixed_titles(recorded):
    assert set(recorded["scores"]) == set(golden.FAMILY_PARAMS) >= {"xgboost", "linear"}
    assert recorded["titles"] == golden.FIXED_TITLES
    assert all(len(s) == len(golden.FIXED_TITLES) for s in recorded["scores"].values())


def test_served_families_score_the_fixed_titles_as_recorded(recorded, rescored):
    changes = _largest_change(recorded, rescored)
    moved = {f: c for f, c in changes.items() if c > recorded["tolerance"]}
    lock_changed = recorded["requirements_lock_sha256"] != golden.lock_sha256()
    advice = (
        "review the score changes, then re-record: cd tests && ../.venv/bin/python -m "
        "fixtures.golden --record"
    )
    if lock_changed:
        pytest.fail(
            f"requirements.lock changed since the golden scores were recorded (versions then: "
            f"{recorded['versions']}); largest score change per family: {changes} "
            f"(tolerance {recorded['tolerance']}). {advice}"
        )
    assert not moved, (
        f"scores moved beyond {recorded['tolerance']} with the same requirements.lock: {moved}; "
        "a code change altered what the models learn (the params here are fixed). " + advice
    )


def test_a_moved_score_is_caught(recorded, rescored):
    tampered = json.loads(json.dumps(recorded))
    tampered["scores"]["xgboost"][0][0] += 10 * recorded["tolerance"]
    assert _largest_change(tampered, rescored)["xgboost"] > recorded["tolerance"]
