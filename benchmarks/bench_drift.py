"""Drift-scoring time for a window of 1,000 requests, per backend and detector (goal: <= 1 s, 2 cores).

Every detector is timed on its own (features KS, predictions chi-square, semantic MMD on MiniLM
embeddings); the embeddings are computed when requests arrive, so they count as ingest time.
The load average is recorded with the results: the machine is shared.

Run: python benchmarks/bench_drift.py  ->  benchmarks/results/drift.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from trending.data.synthetic import DriftKnobs, generate_titles
from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES
from trending.monitoring.drift import (
    DriftMonitor,
    fit_drift_detector,
    load_drift_detector,
    skew_feature_values,
)

WINDOW = 1000
REPEATS = 5
RESULTS = Path(__file__).resolve().parent / "results" / "drift.json"


def _bench(backend: str, reference, live) -> dict:
    genres = list(DEFAULT_GENRES)
    scores = np.array([[1.0 if g in gs else 0.0 for g in genres] for gs in reference["genres"]])
    pairs = list(zip(live["plot"], live["reviews"], strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit_drift_detector(
            texts_of(reference),
            scores,
            Path(tmp),
            genres=genres,
            backend=backend,
            semantic=True,
            reference_skew=skew_feature_values(
                zip(reference["plot"], reference["reviews"], strict=True)
            ),
        )
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        detector = load_drift_detector(Path(tmp))
        load_seconds = time.perf_counter() - start
    monitor = DriftMonitor(lambda m, v: detector, window_size=WINDOW, min_window=50)
    start = time.perf_counter()
    monitor.observe_requests("m", "1", pairs)
    monitor.observe_predictions("m", "1", list(live["genres"]))
    ingest_seconds = time.perf_counter() - start
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = monitor.score(only_changed=False)[("m", "1")]
        times.append(time.perf_counter() - start)
    window = monitor._windows[("m", "1")]
    features, _, predictions = window.snapshot()
    embeddings = window.embedded()
    tests = {
        "features": lambda: detector.backend.features(features),
        "predictions": lambda: detector.backend.predictions(predictions),
        "semantic": lambda: detector.semantic.score(embeddings),
    }
    per_detector = {}
    for name, run in tests.items():
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
        per_detector[name] = {
            "score_seconds_median": round(statistics.median(seconds), 4),
            "score_seconds_max": round(max(seconds), 4),
        }
    return {
        "backend": backend,
        "fit_seconds_incl_imports": round(fit_seconds, 3),
        "load_seconds": round(load_seconds, 3),
        "ingest_seconds_1000_requests": round(ingest_seconds, 3),
        "score_seconds_median": round(statistics.median(times), 4),
        "score_seconds_max": round(max(times), 4),
        "detectors": per_detector,
        "semantic": {
            "reference": len(detector.semantic.reference),
            "permutations": detector.semantic.n_permutations,
        },
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "detected": {k: v.is_drift for k, v in result.detectors.items()},
    }


def main() -> dict:
    reference = generate_titles(4000, seed=1)
    live = generate_titles(
        WINDOW, seed=2, drift=DriftKnobs(vocabulary_shift=0.3, genre_prior_shift=0.5)
    )
    results = {
        "command": "python benchmarks/bench_drift.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "window": WINDOW,
        "reference_rows": "2000 (of 4000: half fits the encoder)",
        "repeats": REPEATS,
        "goal_seconds": 1.0,
        "load_average_1m_before": round(os.getloadavg()[0], 2),
        "backends": [_bench(b, reference, live) for b in ("scipy", "alibi")],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
