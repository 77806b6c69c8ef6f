"""Feast feature-store benchmark: online lookup latency and materialization throughput.

Runs on the real dev file (../shared/data/tmdb-movies-dev.parquet) when present, otherwise on
6,000 synthetic titles. Writes benchmarks/results/features.json with the command and date.

    .venv/bin/python benchmarks/bench_features.py
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_FILE = REPO.parent / "shared" / "data" / "tmdb-movies-dev.parquet"
RESULTS = REPO / "benchmarks" / "results" / "features.json"
LOOKUPS = 300


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "n": len(ordered)}  # fmt: skip


def main() -> dict:
    """Run the benchmark and write the results file; return the results."""
    sys.path.insert(0, str(REPO))
    from trending.data.ingest import feature_store, ingest_source, snapshot_store
    from trending.data.sources import FileSource, SyntheticSource
    from trending.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), feature_repo=REPO / "feature_repo")
        source = (
            FileSource(DEV_FILE, licence="tmdb")
            if DEV_FILE.is_file()
            else SyntheticSource(6000, seed=7)
        )
        dataset = str(DEV_FILE.name) if DEV_FILE.is_file() else "synthetic:6000"
        started = time.perf_counter()
        manifest = ingest_source(source, settings).manifest
        ingest_s = time.perf_counter() - started

        store = feature_store(settings)
        titles = snapshot_store(settings).read(manifest.snapshot_id)
        store.write_source(titles)
        store.apply()
        started = time.perf_counter()
        rows = store.materialize()
        materialize_s = time.perf_counter() - started

        ids = titles["title_id"].tolist()
        store.online(ids[:1])  # warm-up: registry load, connection
        latency = {}
        for batch in (1, 100):
            samples = []
            for i in range(LOOKUPS):
                chosen = [ids[(i * 37 + k) % len(ids)] for k in range(batch)]
                t = time.perf_counter()
                got = store.online(chosen)
                samples.append(time.perf_counter() - t)
                assert all(g is not None for g in got)
            latency[f"{batch}_entities"] = _percentiles(samples)

    results = {
        "benchmark": "features",
        "command": "python benchmarks/bench_features.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": dataset,
        "snapshot_id": manifest.snapshot_id,
        "titles": len(titles),
        "ingest_seconds": round(ingest_s, 3),
        "online_store": "sqlite (Feast local)",
        "online_lookup": latency,
        "materialization": {
            "rows": rows,
            "seconds": round(materialize_s, 3),
            "rows_per_second": round(rows / materialize_s, 1),
        },
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
