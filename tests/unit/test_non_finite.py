"""Numerical stability: NaN and Infinity in a model's inputs or scores are counted and alerted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from prometheus_client import CollectorRegistry

from trending.monitoring.metrics import NON_FINITE_VALUES, ServingMetrics

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "rules"


def _value(registry: CollectorRegistry, where: str, kind: str) -> float | None:
    return registry.get_sample_value(
        "trending_non_finite_values_total",
        {"model": "m", "version": "2", "where": where, "kind": kind},
    )


def test_nan_and_infinity_in_scores_are_counted_by_kind_and_healthy_scores_are_not():
    registry = CollectorRegistry()
    metrics = ServingMetrics("m", "2", ["Action", "Drama"], registry=registry)
    healthy = np.array([[0.2, 0.9]], dtype=np.float32)
    metrics.record_batch(healthy, healthy > 0.5, [40])
    assert _value(registry, "prediction", "nan") is None

    broken = np.array([[np.nan, 0.9], [np.inf, np.nan]], dtype=np.float32)
    metrics.record_batch(broken, np.zeros_like(broken, dtype=bool), [40, 50])
    assert _value(registry, "prediction", "nan") == 2
    assert _value(registry, "prediction", "inf") == 1


def test_numeric_inputs_are_counted_apart_from_predictions():
    registry = CollectorRegistry()
    metrics = ServingMetrics("m", "2", ["Action"], registry=registry)
    assert metrics.record_non_finite("input", np.array([1.0, -np.inf, 3.0])) == 1
    assert metrics.record_non_finite("input", np.array([2.0, 5.0])) == 0
    assert _value(registry, "input", "inf") == 1
    assert _value(registry, "prediction", "inf") is None


def test_the_alert_reads_the_declared_family_and_its_promtool_test_feeds_it():
    rules = yaml.safe_load((RULES / "trending.rules.yml").read_text())
    alert = next(
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "NonFiniteValues"
    )
    tests = yaml.safe_load((RULES / "tests" / "trending.rules.test.yml").read_text())["tests"]
    fed = [
        s["series"].split("{")[0]
        for t in tests
        if any(c["alertname"] == "NonFiniteValues" for c in t.get("alert_rule_test", []))
        for s in t["input_series"]
    ]
    assert NON_FINITE_VALUES.name in alert["expr"]
    assert fed and set(fed) == {NON_FINITE_VALUES.name}
    assert set(NON_FINITE_VALUES.labels) >= {"model", "version", "where"}
