"""Benchmark: how fast a model goes stale, by release year, on the TMDb dev titles.

Not a test. Reads ../shared/data/tmdb-movies-dev.parquet (never committed). Trains each family
on the titles released up to ``--train-until`` (80 % of them; the other 20 % are the same-period
held-out reference, "age 0") and evaluates it on successive newer windows of release years.
The decay curve (micro/macro-F1 per window, and the drop against the reference) is written to
benchmarks/results/staleness.json; docs/monitoring.md ("Staleness") derives the ModelStale
threshold from it.

    nice .venv/bin/python -m benchmarks.bench_staleness --families linear xgboost
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_ablation import machine
from benchmarks.bench_models import DEV_DATA, ROOT, load_dev
from trending.modelling.staleness import decay_curve

RESULTS = ROOT / "benchmarks" / "results" / "staleness.json"
WINDOWS = ((2006, 2009), (2010, 2013), (2014, 2017), (2018, 2022))


def main() -> None:
    """Train on the older window, score the newer ones, write the curve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--families", nargs="+", default=["linear", "xgboost"])
    parser.add_argument("--train-until", type=int, default=2005)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found: the benchmark needs the TMDb dev file")
    frame = load_dev(args.data)
    info = machine()
    started = time.perf_counter()
    curves = {}
    for family in args.families:
        curve = decay_curve(
            frame, family=family, train_until=args.train_until, windows=WINDOWS, seed=args.seed
        )
        curves[family] = json.loads(curve.model_dump_json())
        print(family, json.dumps(curves[family], indent=1), flush=True)
    train_rows = next(iter(curves.values()))["train_rows"] if curves else 0
    result = {
        "command": " ".join(["python -m benchmarks.bench_staleness", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "data": args.data.name,
        "train_until": args.train_until,
        "train_rows": train_rows,
        "seconds": round(time.perf_counter() - started, 1),
        "families": curves,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
