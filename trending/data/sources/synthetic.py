"""The synthetic generator behind the source interface (demo, tests, drift scenarios)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from trending.data.sources.base import ProgressCallback, SourceBatch, no_progress
from trending.data.sources.licence import GENERATED_LICENCE
from trending.data.synthetic import DriftKnobs, generate_titles


class SyntheticSource:
    """``generate_titles(rows, seed=seed, drift=drift)`` as a TitleSource."""

    name = "synthetic"
    licence = GENERATED_LICENCE

    def __init__(self, rows: int, *, seed: int = 7, drift: DriftKnobs | None = None) -> None:
        self.rows = rows
        self.seed = seed
        self.drift = drift or DriftKnobs()

    def fetch(
        self, *, since: datetime | None = None, progress: ProgressCallback = no_progress
    ) -> SourceBatch:
        """Generate the titles (``since`` is ignored: generated data has no change feed)."""
        titles = generate_titles(self.rows, seed=self.seed, drift=self.drift)
        progress("generate", self.rows, self.rows)
        params = {"rows": self.rows, "seed": self.seed}
        if self.drift != DriftKnobs():
            params["drift"] = asdict(self.drift)
        return SourceBatch(titles=titles, params=params, licence=self.licence)
