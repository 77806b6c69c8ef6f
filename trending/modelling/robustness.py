"""Behavioural tests of a genre model: perturbation, invariance and directional expectations.

Each check runs on model input texts through a scoring function (``texts -> scores``), so it works
for every family and for a loaded ``GenrePredictor`` alike:

- perturbation: typos, casing and punctuation noise should leave the predicted genre set alone;
- invariance: swapping the names of people and places should leave the predicted genres alone;
- directional: a telltale phrase ("a night in a haunted house") must not score that genre below
  the same sentence without the telltale word ("a night in a rented house"), and must raise it
  on average.

Stability (perturbation and invariance) is measured as the mean Jaccard similarity of the genre
sets before and after the edit, not as an exact match, and against the model's own *null*
similarity: the same texts with a few function words dropped, an edit that carries no genre. A
title that sits on a threshold flips under any edit; the null edit measures how often that
happens, so only the change *beyond* it (``excess_change``) counts as fragility. The limit on it
is ``GatePolicy.max_robustness_excess_change``, calibrated on the TMDb dev titles (docs/models.md).
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trending.modelling.evaluation import RobustnessCheck, RobustnessReport, apply_thresholds

ScoreFn = Callable[[list[str]], np.ndarray]

# Two disjoint name sets: invariance compares a text with names from PEOPLE_A/PLACES_A against the
# same text with names from PEOPLE_B/PLACES_B.
PEOPLE_A = ("Anna", "Marcus", "Yuki", "Omar", "Lena", "John", "Mary", "David", "Sarah", "Michael")
PEOPLE_B = ("Diego", "Priya", "Jonas", "Chloe", "Kwame", "Peter", "Emma", "James", "Laura", "Ahmed")
PLACES_A = ("Paris", "Lagos", "Tokyo", "Chicago", "Oslo", "London", "Berlin", "Texas")
PLACES_B = ("Lima", "Mumbai", "Glasgow", "Austin", "Seoul", "Madrid", "Cairo", "Boston")

# Words that carry no genre: dropping a few of them is the null edit.
FUNCTION_WORDS = frozenset(
    {"the", "a", "an", "and", "of", "to", "in", "on", "at", "with", "for", "from", "by"}
    | {"his", "her", "their", "its", "is", "are", "was", "as"}
)
NULL_EDIT = "about a quarter of the function words (the, a, of, ...) dropped"
NULL_DROP_RATE = 0.25
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class DirectionalExpectation:
    """``phrase`` must score ``genre`` no lower than ``neutral``, the same sentence without its cue."""

    phrase: str
    genre: str
    neutral: str


DIRECTIONAL_EXPECTATIONS: tuple[DirectionalExpectation, ...] = (
    DirectionalExpectation(
        "They spend a night in a haunted house.", "Horror", "They spend a night in a rented house."
    ),
    DirectionalExpectation(
        "A detective investigates the murder.", "Crime", "A neighbour investigates the noise."
    ),
    DirectionalExpectation(
        "A spaceship carries them to an alien planet.",
        "Science Fiction",
        "A bus carries them to a nearby town.",
    ),
    DirectionalExpectation("They fall in love.", "Romance", "They fall asleep."),
    DirectionalExpectation(
        "Soldiers fight on the frontline of the war.",
        "War",
        "Neighbours chat on the doorstep of the house.",
    ),
)


def _normalise(genre: str) -> str:
    return genre.lower().replace("_", " ").replace("-", " ")


# ---- perturbations ----------------------------------------------------------------------------


def add_typos(text: str, rng: np.random.Generator, rate: float = 0.1) -> str:
    """Swap two neighbouring letters inside about ``rate`` of the words longer than 3 letters."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) > 3 and word.isalpha() and rng.random() < rate:
            j = int(rng.integers(1, len(word) - 2))
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def change_casing(text: str, rng: np.random.Generator) -> str:
    """All lower case or all upper case, at random."""
    return text.lower() if rng.random() < 0.5 else text.upper()


def change_punctuation(text: str, rng: np.random.Generator) -> str:
    """Remove all punctuation, or add a trailing exclamation mark after each sentence."""
    if rng.random() < 0.5:
        return text.translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\.(\s|$)", r"!\1", text)


def drop_function_words(text: str, rng: np.random.Generator, rate: float = NULL_DROP_RATE) -> str:
    """The null edit: drop about ``rate`` of the function words (at least one when there is one)."""
    words = text.split(" ")
    function = [i for i, w in enumerate(words) if w.lower() in FUNCTION_WORDS]
    if not function:
        return text
    dropped = {i for i in function if rng.random() < rate} or {int(rng.choice(function))}
    return " ".join(w for i, w in enumerate(words) if i not in dropped)


PERTURBATIONS: dict[str, tuple[Callable[[str, np.random.Generator], str], str]] = {
    "typos": (add_typos, "neighbouring letters swapped in ~10 % of words"),
    "casing": (change_casing, "text lower-cased or upper-cased"),
    "punctuation": (change_punctuation, "punctuation removed or '.' turned into '!'"),
}


def swap_names(text: str, source: Sequence[str], target: Sequence[str]) -> str:
    """Replace every whole-word occurrence of ``source[i]`` by ``target[i]``."""
    mapping = dict(zip(source, target, strict=True))
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, source)) + r")\b")
    return pattern.sub(lambda m: mapping[m.group(1)], text)


def name_variants(text: str, index: int) -> tuple[str, str]:
    """The text with names from set A and the same text with names from set B.

    Names of either set already in the text are mapped onto set A first; a text with no known
    name gets a short sentence naming a person and a place, so every case tests a name change.
    """
    people = [p for p in (*PEOPLE_A, *PEOPLE_B)]
    places = [p for p in (*PLACES_A, *PLACES_B)]
    a = swap_names(text, PEOPLE_B, PEOPLE_A)
    a = swap_names(a, PLACES_B, PLACES_A)
    if not any(re.search(rf"\b{re.escape(n)}\b", text) for n in (*people, *places)):
        person = PEOPLE_A[index % len(PEOPLE_A)]
        place = PLACES_A[index % len(PLACES_A)]
        a = f"{person} lives in {place}. {a}"
    b = swap_names(swap_names(a, PEOPLE_A, PEOPLE_B), PLACES_A, PLACES_B)
    return a, b


# ---- measures ---------------------------------------------------------------------------------


def genre_set_similarity(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per row, the Jaccard similarity of two multi-hot genre sets (two empty sets: 1.0)."""
    before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    union = (before | after).sum(axis=1)
    both = (before & after).sum(axis=1)
    return np.divide(both, union, out=np.ones(len(before)), where=union > 0)


def describe_edit(before: str, after: str, limit: int = 4) -> str:
    """The words an edit changed, as ``'old' -> 'new'`` pairs (at most ``limit``)."""
    a, b = before.split(), after.split()
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            changes.append(f"{' '.join(a[i1:i2]) or '∅'!r} -> {' '.join(b[j1:j2]) or '∅'!r}")
    more = f" (+{len(changes) - limit} more)" if len(changes) > limit else ""
    return ", ".join(changes[:limit]) + more if changes else "no word changed"


@dataclass(frozen=True)
class _Scored:
    """Scores and genre sets of one list of texts."""

    scores: np.ndarray
    predicted: np.ndarray


def _scored(texts: list[str], score: ScoreFn, thresholds: Sequence[float]) -> _Scored:
    scores = np.asarray(score(texts), dtype=float)
    return _Scored(scores, apply_thresholds(scores, list(thresholds)))


def _names(row: np.ndarray, genres: Sequence[str]) -> list[str]:
    return [g for g, on in zip(genres, row, strict=True) if on]


def _stability_check(
    name: str,
    kind: str,
    description: str,
    before_texts: list[str],
    after_texts: list[str],
    *,
    before: _Scored,
    score: ScoreFn,
    thresholds: Sequence[float],
    genres: Sequence[str],
    null_similarity: np.ndarray,
    titles: Sequence[str] | None,
) -> RobustnessCheck:
    """How far an edit moves the genre sets, beyond what the null edit moves them."""
    after = _scored(after_texts, score, thresholds)
    similarity = genre_set_similarity(before.predicted, after.predicted)
    score_change = np.abs(after.scores - before.scores).max(axis=1)
    same = similarity == 1.0
    # Worst first; titles the null edit also moves are borderline, so they come last.
    order = sorted(
        np.flatnonzero(~same),
        key=lambda i: (null_similarity[i] < 1.0, similarity[i], -score_change[i]),
    )
    examples = [
        _stability_example(
            i, before_texts, after_texts, before.predicted, after.predicted, genres, titles
        )
        | {"similarity": round(float(similarity[i]), 3)}
        for i in order[:MAX_EXAMPLES]
    ]
    mean_similarity = float(similarity.mean()) if len(similarity) else 1.0
    mean_null = float(null_similarity.mean()) if len(null_similarity) else 1.0
    return RobustnessCheck(
        name=name,
        kind=kind,
        description=description,
        cases=len(before_texts),
        passed=int(same.sum()),
        pass_rate=float(same.mean()) if len(same) else 1.0,
        similarity=round(mean_similarity, 4),
        null_similarity=round(mean_null, 4),
        excess_change=round(mean_null - mean_similarity, 4),
        mean_score_change=round(float(score_change.mean()) if len(score_change) else 0.0, 4),
        examples=examples,
    )


def _stability_example(
    i: int,
    before_texts: list[str],
    after_texts: list[str],
    before: np.ndarray,
    after: np.ndarray,
    genres: Sequence[str],
    titles: Sequence[str] | None,
) -> dict[str, Any]:
    was, now = _names(before[i], genres), _names(after[i], genres)
    return {
        **({"title": str(titles[i])} if titles is not None else {}),
        "edit": describe_edit(before_texts[i], after_texts[i]),
        "before": before_texts[i][:160],
        "after": after_texts[i][:160],
        "genres_before": was,
        "genres_after": now,
        "lost": [g for g in was if g not in now],
        "gained": [g for g in now if g not in was],
    }


def directional_check(
    expectation: DirectionalExpectation,
    texts: list[str],
    score: ScoreFn,
    genres: Sequence[str],
    *,
    titles: Sequence[str] | None = None,
    tolerance: float = 0.01,
) -> RobustnessCheck | None:
    """Whether the telltale phrase scores the genre at least as high as its neutral twin.

    Both sentences are appended to each text, so text length and shared words cancel out. A case
    fails when the telltale variant scores the genre *lower* than the neutral one by more than
    ``tolerance`` (CheckList's directional expectation: the score must not move the wrong way);
    a tree model's score may stay flat on titles far from the genre. ``mean_score_change`` is
    the mean gain: the gate also asks it to be positive, so a model blind to the cue fails.
    Returns None when the genre is not in the vocabulary.
    """
    index = {_normalise(g): i for i, g in enumerate(genres)}.get(_normalise(expectation.genre))
    if index is None:
        return None
    neutral = np.asarray(score([f"{t} {expectation.neutral}" for t in texts]))[:, index]
    cued = np.asarray(score([f"{t} {expectation.phrase}" for t in texts]))[:, index]
    ok = cued >= neutral - tolerance
    # Cases that went the wrong way first, then those that did not move.
    order = np.argsort(cued - neutral, kind="stable")
    return RobustnessCheck(
        name=f"directional:{_normalise(expectation.genre).replace(' ', '_')}",
        kind="directional",
        description=f"appending {expectation.phrase!r} must not score {expectation.genre} "
        f"below appending {expectation.neutral!r}, and must raise it on average",
        cases=len(texts),
        passed=int(ok.sum()),
        pass_rate=float(ok.mean()) if len(ok) else 1.0,
        mean_score_change=round(float((cued - neutral).mean()) if len(ok) else 0.0, 4),
        examples=[
            {
                **({"title": str(titles[i])} if titles is not None else {}),
                "text": texts[i][:160],
                "edit": f"{expectation.neutral!r} -> {expectation.phrase!r}",
                "before": round(float(neutral[i]), 4),
                "after": round(float(cued[i]), 4),
            }
            for i in order[:MAX_EXAMPLES]
            if not ok[i] or cued[i] <= neutral[i]
        ],
    )


def run_robustness(
    texts: Sequence[str],
    score: ScoreFn,
    *,
    genres: Sequence[str],
    thresholds: Sequence[float],
    max_cases: int = 200,
    seed: int = 7,
    expectations: Sequence[DirectionalExpectation] = DIRECTIONAL_EXPECTATIONS,
    titles: Sequence[str] | None = None,
) -> RobustnessReport:
    """Run every perturbation, the name invariance and the directional checks on ``texts``.

    Args:
        texts: Model input texts (a sample of the test rows is enough).
        score: Maps texts to scores of shape (len(texts), len(genres)).
        genres: The score columns.
        thresholds: Per-genre thresholds that turn scores into genre sets.
        max_cases: At most this many texts are used (seeded sample), bounding the cost.
        seed: Seed of the sample and of the random perturbations.
        expectations: Directional expectations; those whose genre is not in ``genres`` are skipped.
        titles: A name per text (e.g. the title), shown in the failing examples.

    Returns:
        One check per perturbation, one invariance check and one check per directional expectation;
        the stability checks carry the null edit's similarity on the same texts.
    """
    rng = np.random.default_rng(seed)
    texts = list(texts)
    if titles is not None and len(titles) != len(texts):
        raise ValueError(f"{len(titles)} titles for {len(texts)} texts: give one title per text")
    chosen = list(range(len(texts)))
    if len(texts) > max_cases:
        chosen = sorted(int(i) for i in rng.choice(len(texts), max_cases, replace=False))
    texts = [texts[i] for i in chosen]
    names = [str(titles[i]) for i in chosen] if titles is not None else None
    original = _scored(texts, score, thresholds)
    null = _scored([drop_function_words(t, rng) for t in texts], score, thresholds)
    null_similarity = genre_set_similarity(original.predicted, null.predicted)
    common = {
        "score": score,
        "thresholds": thresholds,
        "genres": genres,
        "null_similarity": null_similarity,
        "titles": names,
    }
    checks = []
    for name, (perturb, description) in PERTURBATIONS.items():
        perturbed = [perturb(t, rng) for t in texts]
        checks.append(
            _stability_check(
                f"perturbation:{name}",
                "perturbation",
                description,
                texts,
                perturbed,
                before=original,
                **common,
            )
        )
    variants = [name_variants(t, i) for i, t in enumerate(texts)]
    with_a = [a for a, _ in variants]
    checks.append(
        _stability_check(
            "invariance:names",
            "invariance",
            "names of people and places swapped must not change the genres",
            with_a,
            [b for _, b in variants],
            before=_scored(with_a, score, thresholds),
            **common,
        )
    )
    for expectation in expectations:
        check = directional_check(expectation, texts, score, genres, titles=names)
        if check is not None:
            checks.append(check)
    return RobustnessReport(
        checks=checks,
        null_edit=NULL_EDIT,
        null_similarity=round(float(null_similarity.mean()) if len(texts) else 1.0, 4),
    )
