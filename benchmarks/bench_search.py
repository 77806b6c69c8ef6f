"""Benchmark: the seeded Optuna search of XGBoost's main parameters on the TMDb dev titles.

Not a test. Reads ../shared/data/tmdb-movies-dev.parquet (never committed), holds out a seeded
test share it never searches on, runs ``trending.modelling.search.search_family`` with a small
budget, scores the defaults and the best trial on the held-out test rows, and merges everything
into benchmarks/results/models.json under the key ``search`` (other keys are kept). The family's
DEFAULT_PARAMS are the best trial of the recorded search (tests/model/test_search.py checks it).

    nice .venv/bin/python -m benchmarks.bench_search --family xgboost --trials 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_ablation import machine, merge_result
from benchmarks.bench_models import DEV_DATA, RESULTS, load_dev
from trending.modelling.bundle import read_manifest
from trending.modelling.families import GenrePredictor
from trending.modelling.families.base import load_model
from trending.modelling.search import search_family
from trending.modelling.training import score_predictor_on, split_labelled, train_bundle


def held_out_metrics(train, test, family: str, params: dict, seed: int) -> dict:
    """Train a bundle with ``params`` and score it on the held-out test rows."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = train_bundle(train, Path(tmp), family=family, params=params, seed=seed)
        predictor = GenrePredictor(read_manifest(Path(tmp)), load_model(Path(tmp), family))
        metrics = score_predictor_on(predictor, test)
    return {k: round(v, 4) for k, v in metrics.items()} | {
        "train_seconds": manifest.metrics["train_seconds"]
    }


def main() -> None:
    """Run the search and merge it into models.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--family", default="xgboost")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument(
        "--search-rows", type=int, default=0, help="Search on a seeded sample of N training rows."
    )
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found: the benchmark needs the TMDb dev file")
    train, test = split_labelled(load_dev(args.data), test_size=args.test_size, seed=args.seed)
    info = machine()
    started = time.perf_counter()
    searched = train.sample(args.search_rows, random_state=args.seed) if args.search_rows else train
    result = search_family(
        searched,
        args.family,
        n_trials=args.trials,
        seed=args.seed,
        progress=lambda t: print(f"trial {t.number}: {t.micro_f1:.4f} {t.params}", flush=True),
    )
    defaults = result.trials[0].params
    record = {
        "command": " ".join(["python -m benchmarks.bench_search", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**info, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "data": args.data.name,
        "search_rows": result.rows,
        "test_rows": len(test),
        "seconds": round(time.perf_counter() - started, 1),
        **json.loads(result.model_dump_json()),
        "test": {
            "defaults_before_search": held_out_metrics(
                train, test, args.family, defaults, args.seed
            ),
            "best_trial": held_out_metrics(train, test, args.family, result.best_params, args.seed),
        },
    }
    current = json.loads(RESULTS.read_text()).get("search", {}) if RESULTS.is_file() else {}
    merge_result(RESULTS, "search", {**current, args.family: record})
    print(json.dumps(record["test"], indent=2), "best:", result.best_params)


if __name__ == "__main__":
    main()
