"""Benchmark: feature-group ablation on the TMDb dev titles (gain and serving cost per group).

Not a test. Reads ../shared/data/tmdb-movies-dev.parquet (never committed), runs
``trending.modelling.ablation.run_ablation`` on seeded folds with cost measurement, and merges the
result into benchmarks/results/models.json under the key ``ablation`` (other keys are kept).

    nice .venv/bin/python -m benchmarks.bench_ablation --folds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_models import DEV_DATA, RESULTS, load_dev
from trending.modelling.ablation import FEATURE_GROUPS, run_ablation


def merge_result(path: Path, key: str, value: Any) -> None:
    """Write ``value`` under ``key`` of the JSON file at ``path``, keeping every other key."""
    current = json.loads(path.read_text()) if path.is_file() else {}
    current[key] = value
    path.write_text(json.dumps(current, indent=2) + "\n")


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the machine is shared: the load average matters)."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    """Run the ablation and merge it into models.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", type=int, default=0, help="Use the first N titles (0 = all).")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found: the benchmark needs the TMDb dev file")
    frame = load_dev(args.data)
    if args.rows:
        frame = frame.head(args.rows)
    info = machine()
    started = time.perf_counter()
    report = run_ablation(frame, folds=args.folds, seed=args.seed, measure_cost=True)
    result = {
        "command": " ".join(["python -m benchmarks.bench_ablation", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**info, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "data": args.data.name,
        "seconds": round(time.perf_counter() - started, 1),
        "metric": report.metric,
        "rows": report.rows,
        "folds": report.folds,
        "full_score": round(report.full_score, 4),
        "full_score_per_fold": report.full_score_per_fold,
        "groups": report.summary(),
        "failing_groups": report.failing_groups(),
        "groups_ablated": list(FEATURE_GROUPS),
    }
    merge_result(RESULTS, "ablation", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
