"""Behavioural checks: a sound keyword model passes; name-sensitive, typo-fragile, erratic models fail.

The models here are deliberately built score functions, so each failure has one known cause.
"""

from __future__ import annotations

import hashlib

import numpy as np

from trending.modelling.gate import GatePolicy, decide
from trending.modelling.robustness import (
    DIRECTIONAL_EXPECTATIONS,
    PEOPLE_A,
    PEOPLE_B,
    PLACES_A,
    PLACES_B,
    add_typos,
    describe_edit,
    drop_function_words,
    genre_set_similarity,
    name_variants,
    run_robustness,
)

GENRES = ["Comedy", "Horror", "Romance"]
KEYWORDS = {
    "Comedy": ("funny", "prank", "hilarious"),
    "Horror": ("haunted", "demon", "terror"),
    "Romance": ("love", "kiss", "passion"),
}
TEXTS = [
    "A funny prank goes wrong at a hilarious wedding in the middle of the summer.",
    "Anna moves into a haunted house with a demon and the terror of the night in Paris.",
    "Two strangers fall in love in Tokyo and share a kiss full of passion on the bridge.",
    "Marcus plays a funny prank while the family sleeps and the dog barks at the moon.",
    "A demon returns to the haunted village where the terror began, and a couple falls in love.",
] * 8
TITLES = [f"Title {i}" for i in range(len(TEXTS))]


def _signature(word: str) -> str:
    return "".join(sorted(word.lower().strip(".,!?")))


def keyword_scores(texts: list[str]) -> np.ndarray:
    """A sound model: genre cue words, matched by their letters (so a swapped pair still counts)."""
    cues = {g: {_signature(k) for k in ks} for g, ks in KEYWORDS.items()}
    out = np.zeros((len(texts), len(GENRES)))
    for i, text in enumerate(texts):
        words = [_signature(w) for w in text.split()]
        for g, genre in enumerate(GENRES):
            hits = sum(w in cues[genre] for w in words)
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


DIRECTIONAL_TEXT = [s for e in DIRECTIONAL_EXPECTATIONS for s in (e.phrase, e.neutral)]
# Every word of the texts, the name sets and the directional sentences: only typos are unknown.
KNOWN_WORDS = {
    w.lower().strip(".,!?")
    for t in (*TEXTS, *PEOPLE_A, *PEOPLE_B, *PLACES_A, *PLACES_B, "lives in", *DIRECTIONAL_TEXT)
    for w in t.split()
}


def typo_fragile_scores(texts: list[str]) -> np.ndarray:
    """Exact spellings only: one word it has never seen and it predicts no genre at all."""
    out = keyword_scores(texts)
    for i, text in enumerate(texts):
        if any(w.lower().strip(".,!?") not in KNOWN_WORDS for w in text.split()):
            out[i] = 0.05
    return out


def erratic_scores(texts: list[str]) -> np.ndarray:
    """Scores from a hash of the exact text: any edit at all reshuffles the genres."""
    out = np.zeros((len(texts), len(GENRES)))
    for i, text in enumerate(texts):
        digest = hashlib.sha256(text.encode()).digest()
        out[i] = [b / 255 for b in digest[: len(GENRES)]]
    return out


def robustness(score, **kwargs):
    return run_robustness(
        TEXTS, score, genres=GENRES, thresholds=[0.35] * 3, titles=TITLES, **kwargs
    )


def by_name(report):
    return {c.name: c for c in report.checks}


def robustness_failures(report) -> set[str]:
    """The robustness checks the default gate policy fails (floors etc. are not at issue here)."""
    from report_builders import make_report

    candidate = make_report().model_copy(update={"robustness": report})
    decision = decide(candidate, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    return {c.name for c in decision.failures if c.name.startswith("robustness")}


def test_sound_model_passes_every_check_of_the_default_policy():
    report = robustness(keyword_scores)
    checks = by_name(report)
    assert checks["invariance:names"].excess_change == 0.0
    assert checks["perturbation:typos"].similarity == 1.0  # letters swapped, same letters
    assert checks["directional:horror"].pass_rate == 1.0
    assert "directional:crime" not in checks  # Crime is not in this vocabulary
    assert report.null_similarity == 1.0
    assert robustness_failures(report) == set()


def test_name_sensitive_model_fails_invariance_and_says_which_titles_and_what_changed():
    report = robustness(name_sensitive_scores)
    invariance = by_name(report)["invariance:names"]
    assert invariance.excess_change > 0.2
    example = invariance.examples[0]
    assert example["title"] in TITLES and example["gained"] == ["Horror"]
    assert "'Anna' -> 'Diego'" in example["edit"] or "'Paris' -> 'Lima'" in example["edit"]
    assert robustness_failures(report) == {"robustness:invariance:names"}


def test_typo_fragile_model_fails_the_typo_check_only():
    report = robustness(typo_fragile_scores)
    typos = by_name(report)["perturbation:typos"]
    assert typos.excess_change > 0.2
    assert typos.examples[0]["lost"] and "->" in typos.examples[0]["edit"]
    assert robustness_failures(report) == {"robustness:perturbation:typos"}


def test_a_model_whose_genres_move_under_the_null_edit_is_stopped_as_erratic():
    report = robustness(erratic_scores)
    assert report.null_similarity < 0.5
    # Compared with its own null edit it looks no worse; the null check itself stops it.
    assert "robustness:null_edit" in robustness_failures(report)


def test_borderline_titles_are_not_counted_as_fragility():
    """A model with every title on a threshold flips under any edit, the null edit included."""

    def borderline(texts: list[str]) -> np.ndarray:
        out = keyword_scores(texts)
        # Comedy on the edge for every title: any edit at all moves it across, half the time.
        out[:, 0] = [0.35 if hashlib.sha256(t.encode()).digest()[0] % 2 else 0.34 for t in texts]
        return out

    report = robustness(borderline)
    typos = by_name(report)["perturbation:typos"]
    assert typos.passed < typos.cases  # exact set match would call it fragile
    assert typos.excess_change <= GatePolicy().max_robustness_excess_change


def test_model_blind_to_a_phrase_fails_that_directional_check():
    def blind_to_horror(texts: list[str]) -> np.ndarray:
        out = keyword_scores(texts)
        out[:, 1] = 0.2
        return out

    def against_horror(texts: list[str]) -> np.ndarray:
        out = keyword_scores(texts)
        out[:, 1] = [0.1 if "haunted" in t else 0.3 for t in texts]
        return out

    blind = robustness(blind_to_horror)
    horror = by_name(blind)["directional:horror"]
    assert horror.pass_rate == 1.0 and horror.mean_score_change == 0.0  # never the wrong way...
    assert horror.examples[0]["title"] in TITLES and "haunted" in horror.examples[0]["edit"]
    assert robustness_failures(blind) == {"robustness:directional:horror"}  # ...but no response
    backwards = by_name(robustness(against_horror))["directional:horror"]
    assert backwards.pass_rate < 0.8 and backwards.mean_score_change < 0
    assert "robustness:directional:horror" in robustness_failures(robustness(against_horror))


def test_directional_check_accepts_a_flat_score_where_a_tree_model_does_not_move():
    def step(texts: list[str]) -> np.ndarray:  # tree-like: flat once Horror is in
        out = keyword_scores(texts)
        out[:, 1] = np.where(out[:, 1] >= 0.35, 0.9, 0.05)
        return out

    report = robustness(step)
    horror = by_name(report)["directional:horror"]
    assert horror.pass_rate == 1.0 and horror.mean_score_change > 0
    assert robustness_failures(report) == set()


def test_genre_set_similarity_is_jaccard_and_two_empty_sets_are_equal():
    before = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 0]])
    after = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert genre_set_similarity(before, after).tolist() == [1 / 3, 1.0, 0.0]


def test_name_variants_change_only_names():
    a, b = name_variants("Anna flies from Paris to Lima.", 0)
    assert a == "Anna flies from Paris to Paris." or "Lima" not in a
    assert "Anna" not in b and "Paris" not in b
    plain_a, plain_b = name_variants("A ghost story.", 3)
    assert plain_a.endswith("A ghost story.") and plain_a != plain_b


def test_typos_and_the_null_edit_are_seeded_and_small():
    text = "the haunted mansion hides a terrible secret beneath the old town"
    first = add_typos(text, np.random.default_rng(1), rate=1.0)
    assert first != text and len(first.split()) == len(text.split())
    assert first == add_typos(text, np.random.default_rng(1), rate=1.0)
    null = drop_function_words(text, np.random.default_rng(1))
    kept = null.split()
    assert 0 < len(text.split()) - len(kept) <= 3
    assert {"haunted", "mansion", "terrible", "secret"} <= set(kept)
    assert describe_edit("a haunted house", "a hanuted house") == "'haunted' -> 'hanuted'"
