"""Behavioural checks: a name-sensitive model fails invariance, a keyword model passes."""

from __future__ import annotations

import numpy as np

from trending.modelling.robustness import add_typos, name_variants, run_robustness

GENRES = ["Comedy", "Horror", "Romance"]
KEYWORDS = {"Comedy": ("funny", "prank"), "Horror": ("haunted", "demon"), "Romance": ("love",)}
TEXTS = [
    "A funny prank goes wrong at a wedding.",
    "Anna moves into a haunted house with a demon in Paris.",
    "Two strangers fall in love in Tokyo.",
    "Marcus plays a prank while the family sleeps.",
] * 5


def keyword_scores(texts: list[str]) -> np.ndarray:
    """A model that looks only at genre words (case-insensitive)."""
    out = np.zeros((len(texts), len(GENRES)))
    for i, text in enumerate(texts):
        lowered = text.lower()
        for g, genre in enumerate(GENRES):
            hits = sum(lowered.count(k) for k in KEYWORDS[genre])
            out[i, g] = min(0.1 + 0.3 * hits, 0.97)
    return out


def name_sensitive_scores(texts: list[str]) -> np.ndarray:
    """The keyword model, plus a spurious shortcut: some names and places mean Horror."""
    out = keyword_scores(texts)
    spooky = ("Diego", "Priya", "Jonas", "Chloe", "Kwame", "Lima", "Mumbai", "Glasgow", "Austin")
    for i, text in enumerate(texts):
        if any(name in text for name in spooky):
            out[i, 1] = 0.99
    return out


def by_name(report):
    return {c.name: c for c in report.checks}


def test_keyword_model_passes_invariance_casing_and_directional():
    report = run_robustness(TEXTS, keyword_scores, genres=GENRES, thresholds=[0.35] * 3)
    checks = by_name(report)
    assert checks["invariance:names"].pass_rate == 1.0
    assert checks["perturbation:casing"].pass_rate == 1.0
    assert checks["directional:horror"].pass_rate == 1.0
    assert checks["directional:romance"].pass_rate == 1.0
    assert "directional:crime" not in checks  # Crime is not in this vocabulary


def test_name_sensitive_model_fails_invariance_with_examples():
    report = run_robustness(TEXTS, name_sensitive_scores, genres=GENRES, thresholds=[0.35] * 3)
    invariance = by_name(report)["invariance:names"]
    assert invariance.pass_rate < 0.5
    assert invariance.examples and "Horror" in invariance.examples[0]["genres_after"]


def test_model_blind_to_a_phrase_fails_that_directional_check():
    def blind_to_horror(texts: list[str]) -> np.ndarray:
        out = keyword_scores(texts)
        out[:, 1] = 0.2
        return out

    report = run_robustness(TEXTS, blind_to_horror, genres=GENRES, thresholds=[0.35] * 3)
    assert by_name(report)["directional:horror"].pass_rate == 0.0


def test_name_variants_change_only_names():
    a, b = name_variants("Anna flies from Paris to Lima.", 0)
    assert a == "Anna flies from Paris to Paris." or "Lima" not in a
    assert "Anna" not in b and "Paris" not in b
    plain_a, plain_b = name_variants("A ghost story.", 3)
    assert plain_a.endswith("A ghost story.") and plain_a != plain_b


def test_typos_keep_word_count_and_are_seeded():
    text = "the haunted mansion hides a terrible secret beneath"
    first = add_typos(text, np.random.default_rng(1), rate=1.0)
    assert first != text and len(first.split()) == len(text.split())
    assert first == add_typos(text, np.random.default_rng(1), rate=1.0)
