"""The prior baseline: every title gets each genre's training frequency as its score."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trending.modelling.families.linear import check_params


class PriorGenreModel:
    """Scores are the genre base rates; with tuned thresholds it predicts the majority genres."""

    family = "prior"

    def __init__(self, **params: Any) -> None:
        self.params = check_params(self.family, params, {"seed": 7})
        self.rates: np.ndarray | None = None

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Remember each genre's share of positive titles."""
        self.rates = np.asarray(labels, dtype=np.float32).mean(axis=0)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The base rates, one row per text."""
        if self.rates is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        return np.tile(self.rates, (len(texts), 1))

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the base rates as JSON."""
        if self.rates is None:
            raise RuntimeError("the model is not trained: nothing to save")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "prior.json").write_text(json.dumps({"rates": self.rates.tolist()}))
        return {"type": "none"}

    @classmethod
    def load(cls, directory: Path) -> PriorGenreModel:
        """Load a model written by ``save``."""
        model = cls()
        model.rates = np.asarray(
            json.loads((directory / "prior.json").read_text())["rates"], np.float32
        )
        return model
