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


def load_average() -> list[float]:
    """The 1/5/15-minute load averages (the machine is shared: figures depend on them)."""
    return [round(x, 2) for x in os.getloadavg()]


def combine_folds(families: dict, family: str) -> dict | None:
    """One summary over every recorded fold of ``family`` (``family`` + ``family folds a-b``).

    Per-fold micro-F1 is recorded for every fold; macro- and samples-F1 of runs that kept only
    their mean are weighted by their number of folds. Returns None when not every fold of the
    split is recorded.
    """
    parts = [
        (k, v["cv"]) for k, v in families.items() if k == family or k.startswith(f"{family} folds ")
    ]
    if not parts:
        return None
    folds = parts[0][1]["folds"]
    numbers, micro, weighted = [], [], {"macro_f1": 0.0, "samples_f1": 0.0}
    for _, cv in parts:
        run = cv.get("fold_numbers") or list(range(1, cv["folds_run"] + 1))
        numbers += run
        micro += cv["micro_f1_per_fold"]
        for metric in weighted:
            weighted[metric] += cv[metric] * len(run)
    if sorted(numbers) != list(range(1, folds + 1)):
        return None
    by_fold = dict(zip(numbers, micro, strict=True))
    return {
        "folds": folds,
        "folds_run": folds,
        "fold_numbers": sorted(numbers),
        "micro_f1": round(float(np.mean(micro)), 4),
        "macro_f1": round(weighted["macro_f1"] / folds, 4),
        "samples_f1": round(weighted["samples_f1"] / folds, 4),
        "micro_f1_per_fold": [by_fold[n] for n in sorted(numbers)],
        "micro_f1_std": round(float(np.std(micro)), 4),
        "combined_from": [k for k, _ in parts],
        "note": "computed from the recorded per-fold figures of the entries in combined_from "
        "(same KFold split, seed and params); macro/samples F1 are fold-weighted means of "
        "their recorded means; no fold was re-run",
    }


def pipeline_champion(frame: pd.DataFrame, results: dict, seed: int) -> dict:
    """What `trending pipeline run training` with every default decides on the dev titles.

    Same steps and defaults as the pipeline: a seeded 80/20 split (split_dataset), every family
    with its default parameters (train_model), evaluation with 200 robustness cases (evaluate),
    the default GatePolicy against the linear baseline, and choose_champion. BERT is not trained
    here (~27 min per fold on this CPU): its figures are the recorded 5-fold CV, and it is not
    gated, which is said in the result.
    """
    from trending.modelling.gate import GatePolicy, choose_champion, decide
    from trending.modelling.training import evaluate_candidate, split_labelled, train_bundle

    train, test = split_labelled(frame, test_size=0.2, seed=seed)
    reports, timings = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in ("xgboost", "linear", "prior"):
            started = time.perf_counter()
            train_bundle(train, Path(tmp) / family, family=family, seed=seed)
            reports[family] = evaluate_candidate(
                Path(tmp) / family, test, robustness=family == "xgboost", robustness_cases=200
            )
            timings[family] = round(time.perf_counter() - started, 1)
            print(f"  {family}: {reports[family].overall} ({timings[family]} s)", flush=True)
    policy = GatePolicy()
    decision = decide(reports["xgboost"], baseline=reports["linear"], policy=policy)
    choice = choose_champion([reports["xgboost"]], {"xgboost": decision})
    bert = (results["families"].get("bert (5 folds)") or {}).get("cv")
    return {
        "what": "the pipeline's defaults (split 0.2/seed 7, default params, 200 robustness "
        "cases, GatePolicy()) on the dev titles, XGBoost + linear + prior measured here",
        "train_rows": len(train),
        "test_rows": len(test),
        "seconds": timings,
        "load_average": load_average(),
        "test": {f: {k: round(v, 4) for k, v in r.overall.items()} for f, r in reports.items()},
        "xgboost_gate": {
            "passed": decision.passed,
            "failures": [f"{c.name}: {c.message}" for c in decision.failures],
            "robustness": {
                c.name: {
                    "similarity": c.similarity,
                    "null_similarity": c.null_similarity,
                    "excess_change": c.excess_change,
                    "pass_rate": round(c.pass_rate, 4),
                    "mean_score_change": c.mean_score_change,
                }
                for c in reports["xgboost"].robustness.checks
            },
            "null_similarity": reports["xgboost"].robustness.null_similarity,
        },
        "champion_without_bert": choice.champion,
        "bert": {
            "trained_here": False,
            "recorded_cv": bert and {k: bert[k] for k in ("micro_f1", "macro_f1", "folds_run")},
            "note": "not trained (27-30 min per fold on 2 shared cores): BERT's robustness under "
            "the new checks is not measured; if it passes its gate, the pipeline's rule (highest "
            "micro-F1) makes it the champion, since its CV micro-F1 is above XGBoost's",
        },
    }


def robustness_calibration(frame: pd.DataFrame, seed: int) -> dict:
    """The robustness checks of realistic and deliberately bad models on the dev titles.

    Good: the linear and XGBoost families with their defaults. Bad, built on purpose: labels
    shuffled; name-sensitive (a "<person> lives in <place>." sentence tied to the first genre is
    prepended to 90 % of the training plots); typo-fragile (case-sensitive exact character
    7-grams only). Each is evaluated with the pipeline's 200 robustness cases on the same split.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.multiclass import OneVsRestClassifier

    from trending.modelling.evaluation import tune_thresholds
    from trending.modelling.gate import GatePolicy
    from trending.modelling.robustness import PEOPLE_A, PEOPLE_B, PLACES_A, PLACES_B, run_robustness
    from trending.modelling.training import candidate_predictor, split_labelled

    vocabulary = GenreVocabulary()
    train, test = split_labelled(frame, test_size=0.2, seed=seed)
    test_texts, titles = texts_of(test), list(test["title"]) if "title" in test else None
    y_test = vocabulary.encode(test["genres"])
    people, places = [*PEOPLE_A, *PEOPLE_B], [*PLACES_A, *PLACES_B]
    rng = np.random.default_rng(3)

    def leak_names(row: pd.Series) -> str:
        k = sum(map(ord, row["genres"][0]))
        sentence = f"{people[k % len(people)]} lives in {places[k % len(places)]}. "
        return sentence + row["plot"] if rng.random() < 0.9 else row["plot"]

    shuffled = train.assign(genres=train["genres"].sample(frac=1.0, random_state=1).to_list())
    trained = {
        "linear": (train, "linear"),
        "xgboost": (train, "xgboost"),
        "bad: shuffled labels (linear)": (shuffled, "linear"),
        "bad: name-sensitive (linear)": (
            train.assign(plot=train.apply(leak_names, axis=1)),
            "linear",
        ),
    }
    out: dict = {}
    policy = GatePolicy()

    def record(name: str, score, thresholds: list[float]) -> None:
        started = time.perf_counter()
        predicted = apply_thresholds(score(test_texts), thresholds)
        report = run_robustness(
            test_texts,
            score,
            genres=vocabulary.genres,
            thresholds=thresholds,
            max_cases=200,
            seed=seed,
            titles=titles,
        )
        out[name] = {
            "test": {k: round(v, 4) for k, v in classification_metrics(y_test, predicted).items()},
            "null_similarity": report.null_similarity,
            "checks": {
                c.name: {
                    "similarity": c.similarity,
                    "excess_change": c.excess_change,
                    "exact_set_pass_rate": round(c.pass_rate, 4),
                    "mean_score_change": c.mean_score_change,
                }
                for c in report.checks
            },
            "fails_default_policy": [
                c.name
                for c in report.checks
                if (
                    c.excess_change is not None
                    and c.excess_change > policy.max_robustness_excess_change
                )
                or (c.excess_change is None and c.pass_rate < policy.min_robustness_pass_rate)
            ]
            + (
                ["null_edit"]
                if report.null_similarity < policy.min_robustness_null_similarity
                else []
            ),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"  {name}: {out[name]['fails_default_policy']}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for name, (rows, family) in trained.items():
            train_bundle(rows, Path(tmp) / family / name[:3], family=family, seed=seed)
            predictor = candidate_predictor(Path(tmp) / family / name[:3])
            record(name, predictor.scores, predictor.manifest.thresholds)

    fit_rows, valid_rows = train_test_split(np.arange(len(train)), test_size=0.2, random_state=seed)
    texts, labels = texts_of(train), vocabulary.encode(train["genres"])
    exact = TfidfVectorizer(
        analyzer="char", ngram_range=(7, 7), lowercase=False, sublinear_tf=True, min_df=2
    )
    model = OneVsRestClassifier(LogisticRegression(C=4, max_iter=300)).fit(
        exact.fit_transform([texts[i] for i in fit_rows]), labels[fit_rows]
    )

    def exact_scores(batch: list[str]) -> np.ndarray:
        return model.predict_proba(exact.transform(batch))

    thresholds = tune_thresholds(labels[valid_rows], exact_scores([texts[i] for i in valid_rows]))
    record("bad: typo-fragile (exact char 7-grams)", exact_scores, thresholds)
    return {
        "what": "robustness of realistic and deliberately bad models on one 80/20 split of the "
        "dev titles (200 cases); see robustness_calibration() in benchmarks/bench_models.py",
        "policy": policy.model_dump(
            include={
                "max_robustness_excess_change",
                "min_robustness_null_similarity",
                "min_robustness_pass_rate",
            }
        ),
        "load_average": load_average(),
        "models": out,
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
    parser.add_argument(
        "--summaries-only",
        action="store_true",
        help="Only add the combined 5-fold summaries computed from recorded folds; train nothing.",
    )
    parser.add_argument(
        "--pipeline-champion",
        action="store_true",
        help="Also run the training pipeline's default gate on the dev titles (no BERT).",
    )
    parser.add_argument(
        "--robustness-calibration",
        action="store_true",
        help="Also measure the robustness checks on good and deliberately bad models.",
    )
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
            "load_average_at_start": load_average(),
            "data": {"file": args.data.name, "titles": len(frame)},
        }
    )
    measured: set[str] = set()  # family entries this run wrote (only these overwrite the file's)
    for family in [] if args.summaries_only else args.families:
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
        measured.add(key)
        # Re-read before writing: a BERT run may be going on in another process.
        latest = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"families": {}}
        results["families"] = {**latest.get("families", {}), **results["families"]}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str))
    combined = combine_folds(results["families"], "bert")
    if combined:
        results["families"]["bert (5 folds)"] = {
            "params": BERT_BENCH_PARAMS,
            "date": results["date"],
            "cv": combined,
        }
        measured.add("bert (5 folds)")
    extra = {
        "robustness_calibration": robustness_calibration if args.robustness_calibration else None,
        "pipeline_champion": pipeline_champion if args.pipeline_champion else None,
    }
    for key, measure in extra.items():
        if measure is None:
            continue
        print(f"{key}:", flush=True)
        value = (
            measure(frame, args.seed)
            if key == "robustness_calibration"
            else measure(frame, results, args.seed)
        )
        results[key] = {"command": results["command"], "date": results["date"], **value}
    _write_merged(results, measured)
    print(json.dumps(results, indent=2, default=str))
    return results


def _write_merged(results: dict, measured: set[str]) -> None:
    """Write over the file's current content: keys merged, none dropped.

    Of the family entries, only those this run measured replace the file's (another run may have
    written others since this one started).
    """
    latest = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    merged = {**latest, **results}
    families = results.get("families", {})
    merged["families"] = {**latest.get("families", {}), **{k: families[k] for k in measured}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2, default=str))


if __name__ == "__main__":
    main()
