"""Impact of staleness: train on older titles, score successively newer ones.

``decay_curve`` trains a family on the titles released up to ``train_until`` (minus a seeded
same-period reference share) and scores it on the reference ("age 0") and on each newer window
of release years. The drop of micro-F1 per year of age, fitted over the windows, says how fast a
model of this family goes stale; ``days_until_drop`` turns it into the model age at which the
expected drop reaches a tolerance (the gate's ``max_regression``), which is what the ModelStale
alert's threshold must stay below (docs/monitoring.md, "Staleness").
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from trending.modelling.training import candidate_predictor, score_predictor_on, train_bundle


class StalenessPoint(BaseModel):
    """The model's quality on one window of release years."""

    window: str
    years_after_training: float
    rows: int
    micro_f1: float
    macro_f1: float
    micro_f1_drop: float = 0.0
    macro_f1_drop: float = 0.0


class StalenessCurve(BaseModel):
    """A family's quality as its training data ages."""

    family: str
    train_until: int
    train_rows: int
    points: list[StalenessPoint]
    micro_f1_drop_per_year: float | None


def decay_curve(
    titles: pd.DataFrame,
    *,
    family: str,
    train_until: int,
    windows: Sequence[tuple[int, int]],
    params: dict[str, Any] | None = None,
    reference_share: float = 0.2,
    seed: int = 7,
) -> StalenessCurve:
    """Train on titles released up to ``train_until``; score newer windows (inclusive years).

    Raises:
        ValueError: A window is empty or the old period has too few titles.
    """
    labelled = titles[(titles["genres"].map(len) > 0) & titles["year"].notna()]
    labelled = labelled.reset_index(drop=True)
    years = labelled["year"].astype(int)
    old = labelled[years <= train_until].reset_index(drop=True)
    reference_rows = np.random.default_rng(seed).random(len(old)) < reference_share
    train, reference = old[~reference_rows], old[reference_rows]
    with tempfile.TemporaryDirectory() as tmp:
        train_bundle(train, Path(tmp), family=family, params=params, seed=seed)
        predictor = candidate_predictor(Path(tmp))
        base = score_predictor_on(predictor, reference)
        points = [
            StalenessPoint(
                window=f"<= {train_until} (held out)",
                years_after_training=0,
                rows=len(reference),
                micro_f1=round(base["micro_f1"], 4),
                macro_f1=round(base["macro_f1"], 4),
            )
        ]
        for lo, hi in windows:
            rows = labelled[(years >= lo) & (years <= hi)]
            if rows.empty:
                raise ValueError(f"no labelled titles released in {lo}-{hi}")
            metrics = score_predictor_on(predictor, rows)
            points.append(
                StalenessPoint(
                    window=f"{lo}-{hi}",
                    years_after_training=round((lo + hi) / 2 - train_until, 1),
                    rows=len(rows),
                    micro_f1=round(metrics["micro_f1"], 4),
                    macro_f1=round(metrics["macro_f1"], 4),
                    micro_f1_drop=round(base["micro_f1"] - metrics["micro_f1"], 4),
                    macro_f1_drop=round(base["macro_f1"] - metrics["macro_f1"], 4),
                )
            )
    newer = points[1:]
    slope = (
        float(
            np.polyfit(
                [p.years_after_training for p in newer], [p.micro_f1_drop for p in newer], 1
            )[0]
        )
        if len(newer) > 1
        else None
    )
    return StalenessCurve(
        family=family,
        train_until=train_until,
        train_rows=len(train),
        points=points,
        micro_f1_drop_per_year=round(slope, 5) if slope is not None else None,
    )


def days_until_drop(drop_per_year: float | None, tolerance: float) -> float:
    """Model age (days) at which the expected micro-F1 drop reaches ``tolerance``.

    Infinite when the curve shows no decay (a slope at or below zero).
    """
    if drop_per_year is None or drop_per_year <= 0:
        return math.inf
    return tolerance / drop_per_year * 365.25
