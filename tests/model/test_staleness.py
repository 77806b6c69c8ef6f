"""Impact of staleness: the decay curve is measured, and the ModelStale threshold respects it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trending.data.synthetic import DriftKnobs, generate_titles
from trending.modelling.gate import GatePolicy
from trending.modelling.staleness import days_until_drop, decay_curve

ROOT = Path(__file__).resolve().parents[2]


def _titles_ageing_with_the_world() -> pd.DataFrame:
    """Titles of 2000 as trained on; later years use more and more words the model never saw."""
    parts = [generate_titles(500, seed=1).assign(year=2000)]
    for i, (year, shift) in enumerate(((2004, 0.3), (2008, 0.6), (2012, 0.9)), start=2):
        drifted = generate_titles(150, seed=i, drift=DriftKnobs(vocabulary_shift=shift))
        parts.append(drifted.assign(year=year, title_id=drifted["title_id"] + f"-{year}"))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.slow
def test_the_curve_shows_quality_falling_as_the_data_ages():
    curve = decay_curve(
        _titles_ageing_with_the_world(),
        family="linear",
        train_until=2000,
        windows=[(2004, 2004), (2008, 2008), (2012, 2012)],
    )
    drops = [p.micro_f1_drop for p in curve.points[1:]]
    assert [p.years_after_training for p in curve.points] == [0, 4, 8, 12]
    assert drops == sorted(drops) and drops[-1] > 0.1
    assert curve.micro_f1_drop_per_year > 0
    assert days_until_drop(curve.micro_f1_drop_per_year, 0.02) < math.inf


def test_days_until_drop():
    assert days_until_drop(0.02, 0.02) == pytest.approx(365.25)
    assert days_until_drop(-0.01, 0.02) == math.inf and days_until_drop(None, 0.02) == math.inf


def test_model_stale_fires_before_the_recorded_decay_costs_the_gates_tolerance():
    recorded = json.loads((ROOT / "benchmarks" / "results" / "staleness.json").read_text())
    rules = yaml.safe_load((ROOT / "monitoring" / "rules" / "trending.rules.yml").read_text())
    stale = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ModelStale")
    days = int(re.search(r">\s*(\d+)\s*\*\s*86400", stale["expr"]).group(1))
    tolerance = GatePolicy().max_regression
    for family, curve in recorded["families"].items():
        allowed = days_until_drop(curve["micro_f1_drop_per_year"], tolerance)
        assert days <= allowed, (
            f"ModelStale waits {days} days, but {family} loses {tolerance} micro-F1 after "
            f"{allowed:.0f} days on the recorded curve: lower the threshold (docs/monitoring.md)"
        )
