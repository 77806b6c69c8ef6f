"""The Title record check: bad rows are quarantined with reasons, nothing is lost."""

from __future__ import annotations

import pandas as pd
import pytest

from trending.data.schema import validate_titles
from trending.data.synthetic import generate_titles
from trending.genres import GenreVocabulary


def test_clean_batch_is_accepted_whole():
    frame = generate_titles(50, seed=1)
    report = validate_titles(frame, GenreVocabulary())
    assert report.counts == {"in": 50, "accepted": 50, "rejected": 0}
    assert str(report.accepted["event_timestamp"].dt.tz) == "UTC"


def test_bad_rows_are_rejected_with_reasons_and_counts_reconcile():
    frame = generate_titles(10, seed=2)
    frame.loc[1, "plot"] = "   "
    frame.loc[2, "genres"] = ["Cyberpunk"]
    frame.loc[3, "year"] = 1492
    frame.loc[4, "kind"] = "podcast"
    frame.loc[5, "title_id"] = frame.loc[0, "title_id"]
    report = validate_titles(frame, GenreVocabulary())

    assert report.counts == {"in": 10, "accepted": 5, "rejected": 5}
    reasons = dict(zip(report.rejected["row"], report.rejected["reason"], strict=True))
    assert "plot" in reasons[1] and "at least 1 character" in reasons[1]
    assert "unknown genre(s) ['Cyberpunk']" in reasons[2]
    assert reasons[3].startswith("year")
    assert "kind" in reasons[4]
    assert reasons[5] == "title_id: duplicate of row 0"
    assert set(report.accepted["title_id"]) == set(frame["title_id"].iloc[[0, 6, 7, 8, 9]])


def test_wrong_types_are_reasons_not_crashes():
    frame = generate_titles(3, seed=3)
    frame["year"] = frame["year"].astype(object)
    frame.loc[0, "year"] = "nineteen-ninety"
    frame.loc[1, "reviews"] = "not a list"
    report = validate_titles(frame)
    assert report.counts["rejected"] == 2
    assert report.rejected["reason"].str.contains("year").iloc[0]


def test_a_batch_without_the_contract_columns_is_refused():
    with pytest.raises(ValueError, match="no plot column"):
        validate_titles(pd.DataFrame({"title_id": ["a"]}))
