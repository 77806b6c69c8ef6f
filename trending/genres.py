"""The genre vocabulary and multi-hot encoding of genre lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# TMDb's 19 movie genres; TV-only TMDb genres are mapped onto these by the data sources.
DEFAULT_GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science Fiction",
    "TV Movie",
    "Thriller",
    "War",
    "Western",
)


class UnknownGenreError(ValueError):
    """A genre that is not in the vocabulary."""


class GenreVocabulary:
    """An ordered, duplicate-free list of genres; the column order of every label matrix."""

    def __init__(self, genres: Sequence[str] = DEFAULT_GENRES) -> None:
        if len(set(genres)) != len(genres):
            raise ValueError(f"genre vocabulary has duplicates: {sorted(genres)}")
        if not genres:
            raise ValueError("genre vocabulary is empty")
        self.genres: tuple[str, ...] = tuple(genres)
        self._index = {g: i for i, g in enumerate(self.genres)}

    def __len__(self) -> int:
        return len(self.genres)

    def __contains__(self, genre: object) -> bool:
        return genre in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenreVocabulary) and other.genres == self.genres

    def __repr__(self) -> str:
        return f"GenreVocabulary({list(self.genres)!r})"

    def unknown(self, genres: Iterable[str]) -> list[str]:
        """Return the genres that are not in the vocabulary, in input order."""
        return [g for g in genres if g not in self._index]

    def encode(self, labels: Iterable[Iterable[str]]) -> np.ndarray:
        """Turn genre lists into a multi-hot matrix of shape (rows, genres)."""
        rows = list(labels)
        matrix = np.zeros((len(rows), len(self.genres)), dtype=np.int8)
        for r, genres in enumerate(rows):
            for g in genres:
                if g not in self._index:
                    raise UnknownGenreError(
                        f"genre {g!r} is not in the vocabulary {list(self.genres)}"
                    )
                matrix[r, self._index[g]] = 1
        return matrix

    def decode(self, matrix: np.ndarray) -> list[list[str]]:
        """Turn a multi-hot (or boolean) matrix back into genre lists."""
        return [[self.genres[i] for i in np.flatnonzero(row)] for row in np.asarray(matrix)]
