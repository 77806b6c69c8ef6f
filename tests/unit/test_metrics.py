"""The serving metrics export what the chart's rules and the canary controller read."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.registry import DuplicateTimeseries

from trending.monitoring.metrics import SCORE_BUCKETS, GenreScoreHistogram, ServingMetrics

GENRES = ["Action", "Comedy", "Drama"]


def exposition(registry: CollectorRegistry) -> list[str]:
    """/metrics lines, without the ``_created`` timestamps (they differ by construction time)."""
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


def test_genre_score_histogram_exports_what_a_labelled_histogram_would():
    reference, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram(
        "trending_prediction_score",
        "Predicted score per genre.",
        ("model", "version", "genre"),
        buckets=SCORE_BUCKETS,
        registry=reference,
    )
    scores = GenreScoreHistogram(
        "trending_prediction_score",
        "Predicted score per genre.",
        {"model": "m", "version": "3"},
        GENRES,
        SCORE_BUCKETS,
    )
    ours.register(scores)
    rng = np.random.default_rng(4)
    batches = [rng.random((n, len(GENRES))).astype(np.float32) for n in (1, 4, 2)]
    batches[0][0] = [0.0, 0.5, 1.0]  # exactly on bucket bounds: counted in that bucket
    batches[1][2, 1] = np.nan  # counted in no bucket, makes the sum NaN (as observe does)
    for batch in batches:
        for row in batch.tolist():
            for genre, value in zip(GENRES, row, strict=True):
                histogram.labels("m", "3", genre).observe(value)
        scores.observe(batch)
    assert exposition(ours) == exposition(reference)

    def created_series(registry: CollectorRegistry) -> list[str]:
        lines = generate_latest(registry).decode().splitlines()
        return [
            line.split("}")[0]
            for line in lines
            if line.startswith("trending_prediction_score_created")
        ]

    assert created_series(ours) == created_series(reference)
    assert len(created_series(ours)) == len(GENRES)


def test_record_batch_counts_every_score_of_every_title():
    registry = CollectorRegistry()
    metrics = ServingMetrics("m", "3", GENRES, registry=registry)
    scores = np.array([[0.9, 0.08, 0.55], [0.2, 0.96, 0.4]], dtype=np.float32)
    metrics.record_batch(scores, scores > 0.5, [120, 80])

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"model": "m", "version": "3", **labels})

    assert value("trending_prediction_score_count", genre="Comedy") == 2
    assert value("trending_prediction_score_bucket", genre="Comedy", le="0.1") == 1
    assert value("trending_prediction_score_bucket", genre="Comedy", le="0.95") == 1
    assert value("trending_prediction_score_bucket", genre="Comedy", le="1.0") == 2
    assert value("trending_prediction_score_sum", genre="Action") == pytest.approx(1.1)
    assert value("trending_predictions_total", genre="Drama") == 1
    assert value("trending_input_chars_sum") == 200


def test_a_second_metrics_set_in_one_registry_is_refused():
    registry = CollectorRegistry()
    ServingMetrics("m", "3", GENRES, registry=registry)
    with pytest.raises(DuplicateTimeseries):
        ServingMetrics("m", "4", GENRES, registry=registry)
