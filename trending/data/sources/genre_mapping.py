"""Map source genre names onto the platform's 19-genre vocabulary (trending/genres.py).

Three outcomes per source genre, documented in docs/data.md ("Genre mapping"):

* **same genre, other spelling** (``science_fiction``, ``sci-fi``, ``COMEDY``): normalised to the
  vocabulary name;
* **TMDb TV genre with a counterpart** (``Action & Adventure`` -> Action + Adventure, ``Kids`` ->
  Family, ...): mapped through ``TV_GENRE_MAP``;
* **known genre without a counterpart** (``Reality``, ``Talk``): dropped from the title's labels
  and counted, so the run reports how many labels were dropped (never silently);
* anything else is kept as given, so validation quarantines the row as "unknown genre".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from trending.genres import DEFAULT_GENRES

# TMDb TV genres (GET /3/genre/tv/list) that have a counterpart in the movie vocabulary.
TV_GENRE_MAP: dict[str, tuple[str, ...]] = {
    "Action & Adventure": ("Action", "Adventure"),
    "Sci-Fi & Fantasy": ("Science Fiction", "Fantasy"),
    "War & Politics": ("War",),  # politics has no counterpart; the war half does
    "Kids": ("Family",),
    "Soap": ("Drama",),  # serial melodrama
    "News": ("Documentary",),  # non-fiction reporting
}
# Known TMDb genres with no counterpart: labelling a talk show "Comedy" or a reality show
# "Documentary" would teach the classifier a wrong association, so the label is dropped.
UNMAPPABLE_GENRES: frozenset[str] = frozenset({"Reality", "Talk"})

# Other spellings seen in exports of the same genres.
_ALIASES: dict[str, str] = {
    "sci fi": "Science Fiction",
    "scifi": "Science Fiction",
    "tvmovie": "TV Movie",
    "made for tv": "TV Movie",
    "musical": "Music",
    "historical": "History",
}


def _key(name: str) -> str:
    """Case-, underscore-, hyphen- and space-insensitive lookup key."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


_CANONICAL: dict[str, tuple[str, ...]] = {
    **{_key(g): (g,) for g in DEFAULT_GENRES},
    **{_key(k): (v,) for k, v in _ALIASES.items()},
    **{_key(k): v for k, v in TV_GENRE_MAP.items()},
}
_UNMAPPABLE_KEYS = frozenset(_key(g) for g in UNMAPPABLE_GENRES)


def map_genres(names: Iterable[str], dropped: Counter[str] | None = None) -> list[str]:
    """Map one title's source genres onto the vocabulary.

    Args:
        names: The genre names as the source spells them.
        dropped: When given, each known-but-unmappable genre is counted here.

    Returns:
        The mapped genres, sorted and without duplicates; unknown names are kept as given
        (validation rejects them with a reason).
    """
    mapped: set[str] = set()
    for raw in names:
        name = str(raw)
        key = _key(name)
        if key in _CANONICAL:
            mapped.update(_CANONICAL[key])
        elif key in _UNMAPPABLE_KEYS:
            if dropped is not None:
                dropped[name.strip()] += 1
        else:
            mapped.add(name)
    return sorted(mapped)
