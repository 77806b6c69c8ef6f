"""Feature value: every feature group must earn its place, or be listed with a reason."""

from __future__ import annotations

import pytest

from trending.data.synthetic import generate_titles
from trending.modelling import ablation
from trending.modelling.ablation import FEATURE_GROUPS, run_ablation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report():
    return run_ablation(generate_titles(500, seed=11), folds=3, seed=7)


def test_every_group_helps_by_more_than_noise_or_is_listed_with_a_reason(report):
    assert report.failing_groups() == [], (
        f"groups that do not beat noise: {report.failing_groups()}: remove them from the "
        "featurization or list them in UNHELPFUL_GROUPS_ACCEPTED with a reason"
    )
    by_name = {g.group: g for g in report.groups}
    assert [g.group for g in report.groups] == list(FEATURE_GROUPS)
    assert by_name["plot_words"].beneficial  # the core signal is never excused
    assert by_name["plot_words"].gain > by_name["plot_words"].noise > 0
    assert all(reason.strip() for reason in ablation.UNHELPFUL_GROUPS_ACCEPTED.values())


def test_an_unlisted_group_without_gain_fails(report, monkeypatch):
    monkeypatch.setattr(ablation, "UNHELPFUL_GROUPS_ACCEPTED", {})
    useless = {g.group for g in report.groups if g.present and not g.beneficial}
    assert useless and set(report.failing_groups()) == useless
    assert "plot_words" not in report.failing_groups()


def test_a_group_the_data_lacks_is_reported_absent_not_failed():
    titles = generate_titles(300, seed=5).assign(reviews=[[] for _ in range(300)])
    result = run_ablation(titles, groups=("plot_words", "reviews"), folds=2)
    reviews = {g.group: g for g in result.groups}["reviews"]
    assert not reviews.present and "reviews" not in result.failing_groups()
    assert result.summary()["reviews"] == {**result.summary()["reviews"], "present": False}


def test_no_group_costs_more_than_its_serving_budget(report, monkeypatch):
    assert report.over_budget() == []
    monkeypatch.setitem(ablation.NONZEROS_BUDGET, "plot_chars", 10)
    assert report.over_budget() == ["plot_chars"]


def test_costs_are_reported_per_group(report):
    summary = report.summary()
    assert summary["plot_chars"]["nonzeros_per_title"] > summary["plot_words"]["nonzeros_per_title"]
    assert summary["metadata"]["nonzeros_per_title"] == 2.0  # kind + decade
    assert all(summary[g]["columns"] > 0 for g in FEATURE_GROUPS)
