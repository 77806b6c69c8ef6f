"""Behavioural tests of a genre model: perturbation, invariance and directional expectations.

Each check runs on model input texts through a scoring function (``texts -> scores``), so it works
for every family and for a loaded ``GenrePredictor`` alike:

- perturbation: typos, casing and punctuation noise should not change the predicted genre set;
- invariance: swapping the names of people and places must not change the predicted genres;
- directional: adding a genre's telltale phrase ("haunted house") must raise that genre's score.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trending.modelling.evaluation import RobustnessCheck, RobustnessReport, apply_thresholds

ScoreFn = Callable[[list[str]], np.ndarray]

# Two disjoint name sets: invariance compares a text with names from PEOPLE_A/PLACES_A against the
# same text with names from PEOPLE_B/PLACES_B.
PEOPLE_A = ("Anna", "Marcus", "Yuki", "Omar", "Lena", "John", "Mary", "David", "Sarah", "Michael")
PEOPLE_B = ("Diego", "Priya", "Jonas", "Chloe", "Kwame", "Peter", "Emma", "James", "Laura", "Ahmed")
PLACES_A = ("Paris", "Lagos", "Tokyo", "Chicago", "Oslo", "London", "Berlin", "Texas")
PLACES_B = ("Lima", "Mumbai", "Glasgow", "Austin", "Seoul", "Madrid", "Cairo", "Boston")


@dataclass(frozen=True)
class DirectionalExpectation:
    """Appending ``phrase`` to a title's text must raise the score of ``genre``."""

    phrase: str
    genre: str


DIRECTIONAL_EXPECTATIONS: tuple[DirectionalExpectation, ...] = (
    DirectionalExpectation("They spend a night in a haunted house.", "Horror"),
    DirectionalExpectation("A detective investigates the murder.", "Crime"),
    DirectionalExpectation("A spaceship carries them to an alien planet.", "Science Fiction"),
    DirectionalExpectation("They fall in love.", "Romance"),
    DirectionalExpectation("Soldiers fight on the frontline of the war.", "War"),
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


# ---- checks -----------------------------------------------------------------------------------


def _same_genres_check(
    name: str,
    kind: str,
    description: str,
    before_texts: list[str],
    after_texts: list[str],
    score: ScoreFn,
    thresholds: Sequence[float],
    genres: Sequence[str],
) -> RobustnessCheck:
    before = apply_thresholds(score(before_texts), list(thresholds))
    after = apply_thresholds(score(after_texts), list(thresholds))
    same = (before == after).all(axis=1)
    examples = [
        {
            "before": before_texts[i][:160],
            "after": after_texts[i][:160],
            "genres_before": [g for g, on in zip(genres, before[i], strict=True) if on],
            "genres_after": [g for g, on in zip(genres, after[i], strict=True) if on],
        }
        for i in np.flatnonzero(~same)[:3]
    ]
    return RobustnessCheck(
        name=name,
        kind=kind,
        description=description,
        cases=len(before_texts),
        passed=int(same.sum()),
        pass_rate=float(same.mean()) if len(same) else 1.0,
        examples=examples,
    )


def directional_check(
    expectation: DirectionalExpectation,
    texts: list[str],
    score: ScoreFn,
    genres: Sequence[str],
    *,
    saturated: float = 0.98,
) -> RobustnessCheck | None:
    """Whether appending the phrase raises the genre's score (or it is already >= ``saturated``).

    Returns None when the genre is not in the vocabulary.
    """
    index = {_normalise(g): i for i, g in enumerate(genres)}.get(_normalise(expectation.genre))
    if index is None:
        return None
    before = score(texts)[:, index]
    after = score([f"{t} {expectation.phrase}" for t in texts])[:, index]
    ok = (after > before) | (before >= saturated)
    return RobustnessCheck(
        name=f"directional:{_normalise(expectation.genre).replace(' ', '_')}",
        kind="directional",
        description=f"appending {expectation.phrase!r} raises {expectation.genre}",
        cases=len(texts),
        passed=int(ok.sum()),
        pass_rate=float(ok.mean()) if len(ok) else 1.0,
        examples=[
            {"text": texts[i][:160], "before": float(before[i]), "after": float(after[i])}
            for i in np.flatnonzero(~ok)[:3]
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

    Returns:
        One check per perturbation, one invariance check and one check per directional expectation.
    """
    rng = np.random.default_rng(seed)
    texts = list(texts)
    if len(texts) > max_cases:
        texts = [texts[i] for i in sorted(rng.choice(len(texts), max_cases, replace=False))]
    checks = []
    for name, (perturb, description) in PERTURBATIONS.items():
        perturbed = [perturb(t, rng) for t in texts]
        checks.append(
            _same_genres_check(
                f"perturbation:{name}",
                "perturbation",
                description,
                texts,
                perturbed,
                score,
                thresholds,
                genres,
            )
        )
    variants = [name_variants(t, i) for i, t in enumerate(texts)]
    checks.append(
        _same_genres_check(
            "invariance:names",
            "invariance",
            "names of people and places swapped must not change the genres",
            [a for a, _ in variants],
            [b for _, b in variants],
            score,
            thresholds,
            genres,
        )
    )
    for expectation in expectations:
        check = directional_check(expectation, texts, score, genres)
        if check is not None:
            checks.append(check)
    return RobustnessReport(checks=checks)
