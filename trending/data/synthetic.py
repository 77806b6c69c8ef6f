"""A seeded generator of synthetic movie/TV titles with realistic genre co-occurrence.

Used by the demo, the tests and the drift scenarios. The drift knobs change the data the way real
traffic drifts: new words, shifted genre priors, longer or shorter plots, noisy labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from trending.genres import DEFAULT_GENRES

# Words that signal each genre; plots mix them with neutral filler, so the task is learnable but
# not trivial (genres share words, and filler dominates).
GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "Action": ("explosion", "chase", "fight", "mercenary", "gunfire", "escape", "assault"),
    "Adventure": ("journey", "treasure", "expedition", "island", "quest", "map", "jungle"),
    "Animation": ("animated", "talking", "cartoon", "magical", "creature", "colorful", "toy"),
    "Comedy": ("hilarious", "awkward", "prank", "misadventure", "quirky", "wedding", "roommate"),
    "Crime": ("detective", "heist", "gangster", "murder", "police", "robbery", "cartel"),
    "Documentary": ("interviews", "footage", "archival", "real", "investigates", "examines"),
    "Drama": ("family", "grief", "struggle", "relationship", "illness", "redemption", "loss"),
    "Family": ("kids", "parents", "dog", "holiday", "friendship", "school", "grandmother"),
    "Fantasy": ("wizard", "dragon", "kingdom", "spell", "enchanted", "prophecy", "sword"),
    "History": ("century", "empire", "revolution", "historical", "king", "battlefield", "era"),
    "Horror": ("haunted", "demon", "possessed", "terror", "curse", "blood", "nightmare"),
    "Music": ("band", "singer", "concert", "album", "musician", "song", "tour"),
    "Mystery": ("clue", "disappearance", "secret", "puzzle", "suspect", "hidden", "riddle"),
    "Romance": ("love", "romance", "kiss", "heart", "passion", "affair", "soulmate"),
    "Science Fiction": ("alien", "spaceship", "robot", "future", "planet", "galaxy", "android"),
    "TV Movie": ("network", "special", "televised", "holiday", "made-for-tv", "broadcast"),
    "Thriller": ("conspiracy", "hostage", "stalker", "deadly", "tension", "kidnapping", "spy"),
    "War": ("soldiers", "army", "frontline", "battalion", "invasion", "trenches", "wartime"),
    "Western": ("cowboy", "sheriff", "frontier", "outlaw", "ranch", "saloon", "desert"),
}

# Genres that tend to appear together (primary -> likely companions).
COMPANIONS: dict[str, tuple[str, ...]] = {
    "Action": ("Thriller", "Adventure", "Crime", "Science Fiction"),
    "Adventure": ("Action", "Fantasy", "Family"),
    "Animation": ("Family", "Comedy", "Fantasy"),
    "Comedy": ("Romance", "Drama", "Family"),
    "Crime": ("Thriller", "Drama", "Mystery"),
    "Documentary": ("History", "Music"),
    "Drama": ("Romance", "Crime", "History"),
    "Family": ("Comedy", "Animation", "Adventure"),
    "Fantasy": ("Adventure", "Action", "Family"),
    "History": ("Drama", "War"),
    "Horror": ("Thriller", "Mystery"),
    "Music": ("Drama", "Documentary", "Romance"),
    "Mystery": ("Thriller", "Crime", "Horror"),
    "Romance": ("Drama", "Comedy"),
    "Science Fiction": ("Action", "Adventure", "Thriller"),
    "TV Movie": ("Family", "Drama", "Romance"),
    "Thriller": ("Crime", "Mystery", "Action"),
    "War": ("History", "Drama", "Action"),
    "Western": ("Action", "Adventure", "Drama"),
}

# Rough TMDb-like priors for the primary genre.
PRIORS: dict[str, float] = {
    "Drama": 0.20, "Comedy": 0.14, "Action": 0.10, "Thriller": 0.08, "Horror": 0.07,
    "Romance": 0.05, "Crime": 0.05, "Documentary": 0.04, "Adventure": 0.04,
    "Science Fiction": 0.04, "Animation": 0.04, "Family": 0.03, "Fantasy": 0.03,
    "Mystery": 0.02, "Music": 0.02, "History": 0.02, "War": 0.01, "Western": 0.01,
    "TV Movie": 0.01,
}  # fmt: skip

# Prose reads better than a word list.
FILLER = (  # noqa: SIM905
    "a young woman returns to her hometown where an old friend waits with news that changes "
    "everything while the city sleeps under a heavy sky and nobody can explain why the lights "
    "went out one evening as strangers arrive to settle an old score between two brothers who "
    "have not spoken in years until a letter appears on the doorstep"
).split()

NEW_WORDS = ("metaverse", "influencer", "algorithm", "livestream", "crypto", "deepfake", "drone")
FIRST_NAMES = (
    "Anna",
    "Marcus",
    "Yuki",
    "Omar",
    "Lena",
    "Diego",
    "Priya",
    "Jonas",
    "Chloe",
    "Kwame",
)
PLACES = ("Paris", "Lagos", "Tokyo", "Chicago", "Oslo", "Lima", "Mumbai", "Glasgow", "Austin")


@dataclass(frozen=True)
class DriftKnobs:
    """How far generated data departs from the reference distribution (0 = no drift)."""

    vocabulary_shift: float = 0.0  # share of genre words replaced by new, unseen words
    genre_prior_shift: float = 0.0  # mix of the priors towards a uniform distribution
    text_length_scale: float = 1.0  # multiplies the plot length
    label_noise: float = 0.0  # probability that a label set is replaced by a random genre
    emerging_genre: str | None = None  # a new genre name that appears in labels and words

    def __post_init__(self) -> None:
        for name in ("vocabulary_shift", "genre_prior_shift", "label_noise"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if not 0.1 <= self.text_length_scale <= 10:
            raise ValueError(
                f"text_length_scale must lie in [0.1, 10], got {self.text_length_scale}"
            )


def generate_titles(
    n: int,
    *,
    seed: int = 7,
    drift: DriftKnobs | None = None,
    start: datetime | None = None,
    source: str = "synthetic",
) -> pd.DataFrame:
    """Generate ``n`` title records (the Title record contract) deterministically from ``seed``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    drift = drift or DriftKnobs()
    rng = np.random.default_rng(seed)
    genres = list(DEFAULT_GENRES)
    priors = np.array([PRIORS[g] for g in genres])
    priors = priors / priors.sum()
    priors = (1 - drift.genre_prior_shift) * priors + drift.genre_prior_shift / len(genres)
    start = start or datetime(2024, 1, 1, tzinfo=UTC)

    rows = []
    for i in range(n):
        primary = genres[rng.choice(len(genres), p=priors)]
        labels = [primary]
        for companion in COMPANIONS[primary]:
            if rng.random() < 0.35 and len(labels) < 3:
                labels.append(companion)
        if drift.emerging_genre and rng.random() < 0.2:
            labels.append(drift.emerging_genre)

        words = []
        for genre in labels:
            pool = GENRE_WORDS.get(genre, NEW_WORDS)
            k = 3 if genre == primary else 2
            words.extend(rng.choice(pool, size=k))
        words = [
            rng.choice(NEW_WORDS) if rng.random() < drift.vocabulary_shift else w for w in words
        ]
        length = max(8, int(rng.integers(18, 40) * drift.text_length_scale))
        filler = list(rng.choice(FILLER, size=length))
        for w in words:
            filler.insert(int(rng.integers(0, len(filler) + 1)), w)
        name, place = rng.choice(FIRST_NAMES), rng.choice(PLACES)
        plot = f"In {place}, {name} faces " + " ".join(filler) + "."

        if drift.label_noise and rng.random() < drift.label_noise:
            labels = [genres[rng.integers(len(genres))]]
        kind = "tv" if rng.random() < 0.25 else "movie"
        n_reviews = int(rng.integers(0, 3))
        reviews = [
            f"A {rng.choice(['gripping', 'slow', 'fun', 'moving'])} story about "
            f"{' and '.join(rng.choice(words, size=2))}."
            for _ in range(n_reviews)
        ]
        rows.append(
            {
                "title_id": f"{source}:{seed}-{i}",
                "title": f"{name} in {place} #{i}",
                "kind": kind,
                "plot": plot,
                "reviews": reviews,
                "year": int(rng.integers(1950, 2025)),
                "genres": sorted(set(labels)),
                "source": source,
                "event_timestamp": start + timedelta(minutes=i),
            }
        )
    return pd.DataFrame(rows)
