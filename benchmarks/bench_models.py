"""Benchmark the model families on the TMDb dev file: training time, inference speed, F1.

Not a test. Reads ../shared/data/tmdb-movies-dev.parquet (never committed) and writes
benchmarks/results/models.json with the command, date, machine and, per family: training wall time
of ``train_bundle`` on all dev titles, inference rows/s of a loaded bundle, and micro/macro F1
from k-fold cross-validation (thresholds tuned inside each training fold, never on the test fold).
BERT is slow on CPU: by default it is measured on one fold only, and that is written down.

    nice .venv/bin/python -m benchmarks.bench_models                    # everything
    nice .venv/bin/python -m benchmarks.bench_models --families xgboost linear --folds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from trending.features.featurize import texts_of
from trending.genres import DEFAULT_GENRES, GenreVocabulary
from trending.modelling.evaluation import apply_thresholds, classification_metrics
from trending.modelling.families import GenrePredictor
from trending.modelling.training import train_bundle, with_text_columns

ROOT = Path(__file__).resolve().parents[1]
DEV_DATA = ROOT.parent / "shared" / "data" / "tmdb-movies-dev.parquet"
RESULTS = ROOT / "benchmarks" / "results" / "models.json"
# The dev file spells genres in snake case ("science_fiction"); map onto the vocabulary.
GENRE_NAMES = {g.lower().replace(" ", "_"): g for g in DEFAULT_GENRES}
BERT_BENCH_PARAMS = {"max_length": 128, "epochs": 5, "batch_size": 32}
FIT_FACTS = ("epochs_run", "best_epoch", "blend_weight")  # recorded per fold when a family has them


def load_dev(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    frame["genres"] = frame["genres"].map(lambda gs: sorted({GENRE_NAMES[g] for g in gs}))
    frame["plot"] = frame["plot"].astype(str)
    return with_text_columns(frame).reset_index(drop=True)


def cross_validate(
    frame: pd.DataFrame,
    family: str,
    params: dict,
    folds: int,
    max_folds: int,
    seed: int,
    first_fold: int = 1,
) -> dict:
    vocabulary = GenreVocabulary()
    scores = []
    for i, (train_rows, test_rows) in enumerate(
        KFold(folds, shuffle=True, random_state=seed).split(frame)
    ):
        if i + 1 < first_fold:
            continue
        if len(scores) >= max_folds:
            break
        with tempfile.TemporaryDirectory() as tmp:
            manifest = train_bundle(
                frame.iloc[train_rows], Path(tmp), family=family, params=params, seed=seed
            )
            predictor = GenrePredictor.from_bundle(Path(tmp))
            test = frame.iloc[test_rows]
            started = time.perf_counter()
            test_scores = predictor.scores(texts_of(test))
            rows_per_s = len(test) / (time.perf_counter() - started)
            predicted = apply_thresholds(test_scores, predictor.manifest.thresholds)
            metrics = classification_metrics(vocabulary.encode(test["genres"]), predicted)
            metrics.update(fit_s=manifest.metrics["train_seconds"], rows_per_s=rows_per_s)
            metrics.update({k: manifest.params[k] for k in FIT_FACTS if k in manifest.params})
        scores.append(metrics)
        print(f"  {family} fold {i + 1}/{folds}: {metrics}", flush=True)
    return {
        "folds": folds,
        "folds_run": len(scores),
        "fold_numbers": list(range(first_fold, first_fold + len(scores))),
        "micro_f1": round(float(np.mean([s["micro_f1"] for s in scores])), 4),
        "macro_f1": round(float(np.mean([s["macro_f1"] for s in scores])), 4),
        "samples_f1": round(float(np.mean([s["samples_f1"] for s in scores])), 4),
        "micro_f1_per_fold": [round(s["micro_f1"], 4) for s in scores],
        "macro_f1_per_fold": [round(s["macro_f1"], 4) for s in scores],
        "fold_fit_s_mean": round(float(np.mean([s["fit_s"] for s in scores])), 1),
        "fold_inference_rows_per_s": round(float(np.mean([s["rows_per_s"] for s in scores])), 1),
        **{f"{k}_per_fold": [s[k] for s in scores] for k in FIT_FACTS if k in scores[0]},
    }


def time_training(frame: pd.DataFrame, family: str, params: dict, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        manifest = train_bundle(frame, Path(tmp), family=family, params=params, seed=seed)
        wall = time.perf_counter() - started
        predictor = GenrePredictor.from_bundle(Path(tmp))
        texts = texts_of(frame.iloc[:1000])
        predictor.scores(texts[:10])
        started = time.perf_counter()
        predictor.scores(texts)
        rows_per_s = len(texts) / (time.perf_counter() - started)
    return {
        "train_bundle_wall_s": round(wall, 1),
        "model_fit_s": manifest.metrics["train_seconds"],
        "fit_rows": manifest.params["train_rows"],
        "inference_rows_per_s": round(rows_per_s, 1),
        "featurizer": manifest.featurizer,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--families", nargs="+", default=["prior", "linear", "xgboost", "bert"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bert-folds", type=int, default=1, help="Folds actually run for BERT.")
    parser.add_argument(
        "--first-fold",
        type=int,
        default=1,
        help="Start at this fold (1-based), e.g. to add BERT folds to an earlier run; the "
        "entry is then written as '<family> folds <first>-<last>' next to the earlier one.",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.first_fold <= args.folds:
        sys.exit(
            f"--first-fold must be between 1 and --folds ({args.folds}), got {args.first_fold}"
        )
    if not args.data.is_file():
        sys.exit(f"{args.data} not found: the dev data lives in ../shared/data/ (never committed)")

    frame = load_dev(args.data)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"families": {}}
    results.update(
        {
            "command": " ".join(["python -m benchmarks.bench_models", *(argv or sys.argv[1:])]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "data": {"file": args.data.name, "titles": len(frame)},
        }
    )
    for family in args.families:
        params = BERT_BENCH_PARAMS if family == "bert" else {}
        print(f"{family}:", flush=True)
        entry: dict = {"params": params, "command": results["command"], "date": results["date"]}
        if not args.skip_timing and family != "bert":
            entry.update(time_training(frame, family, params, args.seed))
        max_folds = args.bert_folds if family == "bert" else args.folds
        entry["cv"] = cross_validate(
            frame, family, params, args.folds, max_folds, args.seed, args.first_fold
        )
        numbers = entry["cv"]["fold_numbers"]
        if family == "bert":
            entry["note"] = (
                f"CPU only; {BERT_BENCH_PARAMS}; F1 from folds {numbers} of {args.folds}; "
                "training time is that of one fold's train_bundle (4,800 titles)"
            )
        key = family if args.first_fold == 1 else f"{family} folds {numbers[0]}-{numbers[-1]}"
        results["families"][key] = entry
        # Re-read before writing: a BERT run may be going on in another process.
        latest = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"families": {}}
        results["families"] = {**latest.get("families", {}), **results["families"]}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
