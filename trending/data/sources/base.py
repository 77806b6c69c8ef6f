"""The interface every title source implements, and what a fetch returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from trending.data.sources.licence import SourceLicence

# progress(task, done, total): a long fetch reports how far it got (total None = unknown).
ProgressCallback = Callable[[str, int, int | None], None]


def no_progress(task: str, done: int, total: int | None) -> None:
    """The default progress callback: report nothing."""


@dataclass
class SourceBatch:
    """Rows a source produced, in the Title record columns, plus what the run should record.

    Values are as the source gave them (after documented mapping only): validation decides
    what is accepted, so a wrong type stays wrong here and is quarantined with a reason.

    Attributes:
        titles: One row per title, Title record columns.
        params: What was asked (query, paths, mapping, as-of time); recorded in the manifest.
        notes: What happened on the way that is not a row rejection, e.g. genre labels dropped
            by the genre mapping (``{"dropped_genres": {"Talk": 3}}``); recorded in the manifest.
        incremental: True when ``titles`` holds only titles changed since the previous snapshot
            of this source; ingest then lays them over that snapshot's rows.
        licence: The terms the rows may be used under (recorded in the snapshot manifest).
    """

    titles: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    incremental: bool = False
    licence: SourceLicence | None = None


class TitleSource(Protocol):
    """Something that produces title records: the TMDb API, a file, the synthetic generator."""

    name: str
    # The terms the rows may be used under; None (undeclared) makes ingest refuse the source.
    licence: SourceLicence | None

    def fetch(
        self, *, since: datetime | None = None, progress: ProgressCallback = no_progress
    ) -> SourceBatch:
        """Produce the titles; with ``since``, only those changed after it (when supported).

        Implementations must either return the whole batch or raise: a failure midway never
        yields a partial batch, so ingest never writes a partial snapshot.
        """
        ...
