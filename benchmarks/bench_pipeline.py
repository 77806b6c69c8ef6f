"""kfp.local pipeline benchmark: per-step overhead and the full training pipeline's wall time.

Overhead = (pipeline wall time - sum of the same step functions called directly) / steps, on the
same data, in the same run; the ratio pipeline / direct is recorded next to it, with the load
average before and after (the machine is shared: a loaded run says so). Uses
../shared/data/tmdb-movies-dev.parquet when present (never committed), else 6,000 synthetic titles.
BERT is cut to a few optimizer steps ("XGBoost-only" timing; BERT on a CPU is measured in
bench_models). Writes benchmarks/results/pipeline.json.

    .venv/bin/python -m benchmarks pipeline
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_FILE = REPO.parent / "shared" / "data" / "tmdb-movies-dev.parquet"
RESULTS = REPO / "benchmarks" / "results" / "pipeline.json"
PARAMS = {
    "bert_params_json": json.dumps({"max_steps": 2, "max_length": 64, "epochs": 1}),
    "robustness_cases": 100,
    # Real data, default floors: the gate may well say no; registration is not what is timed.
    "gate_policy_json": "{}",
}


def _ingest(settings) -> str:
    from trending.data.ingest import ingest_frame, ingest_source
    from trending.data.sources import FileSource
    from trending.data.synthetic import generate_titles

    if DEV_FILE.is_file():
        return ingest_source(FileSource(DEV_FILE, licence="tmdb"), settings).manifest.snapshot_id
    return ingest_frame(
        generate_titles(6000, seed=1), settings, source="synthetic"
    ).manifest.snapshot_id


def _direct(settings, root: Path) -> dict[str, float]:
    """The training pipeline's steps as plain function calls, timed one by one."""
    from kfp.dsl import Artifact, Dataset, Metrics, Model

    from components.evaluate import evaluate
    from components.evaluate_production import evaluate_production
    from components.gate import gate
    from components.ingest import ingest
    from components.load_features import load_features
    from components.materialize_features import materialize_features
    from components.snapshot import snapshot
    from components.split_dataset import split_dataset
    from components.train_model import train_model
    from components.validate import validate

    def art(kind, name):
        return kind(name=name, uri=str(root / name))

    timings: dict[str, float] = {}
    root.mkdir(parents=True, exist_ok=True)

    def timed(name, fn, **kwargs):
        start = time.perf_counter()
        out = fn.python_func(**kwargs)
        timings[name] = time.perf_counter() - start
        return out

    data_uri = settings.data_dir.resolve().as_uri()
    registry_uri = settings.resolved_registry_uri
    feast = {
        "feature_repo": str(REPO / "feature_repo"),
        "feast_dir": str(settings.feature_store_dir.resolve()),
    }
    raw, acc, rej = art(Dataset, "raw"), art(Dataset, "acc"), art(Dataset, "rej")
    timed("ingest", ingest, raw=raw, data_uri=data_uri, source="snapshot")
    timed("validate", validate, raw=raw, accepted=acc, rejected=rej)
    sid = timed(
        "snapshot", snapshot, accepted=acc, rejected=rej, data_uri=data_uri, source="snapshot"
    )
    timed("materialize-features", materialize_features, data_uri=data_uri, snapshot_id=sid, **feast)
    feats, train, test = art(Dataset, "f"), art(Dataset, "train"), art(Dataset, "test")
    timed(
        "load-features", load_features, features=feats, data_uri=data_uri, snapshot_id=sid, **feast
    )
    timed("split-dataset", split_dataset, features=feats, train=train, test=test)
    bundles, reports = {}, {}
    for family, params in (
        ("xgboost", "{}"),
        ("bert", PARAMS["bert_params_json"]),
        ("linear", "{}"),
        ("prior", "{}"),
    ):
        bundles[family], reports[family] = art(Model, f"b-{family}"), art(Artifact, f"r-{family}")
        timed(
            f"train-{family}",
            train_model,
            train=train,
            bundle=bundles[family],
            family=family,
            snapshot_id=sid,
            params_json=params,
        )
        timed(
            f"evaluate-{family}",
            evaluate,
            bundle=bundles[family],
            test=test,
            report=reports[family],
            metrics=art(Metrics, f"m-{family}"),
            robustness=family in ("xgboost", "bert"),
            robustness_cases=PARAMS["robustness_cases"],
        )
    production = art(Artifact, "production")
    timed(
        "evaluate-production",
        evaluate_production,
        test=test,
        report=production,
        registry_uri=registry_uri,
        model_name=settings.model_name,
    )
    timed(
        "gate",
        gate,
        xgboost_bundle=bundles["xgboost"],
        xgboost_report=reports["xgboost"],
        bert_bundle=bundles["bert"],
        bert_report=reports["bert"],
        linear_report=reports["linear"],
        prior_report=reports["prior"],
        production_report=production,
        champion=art(Model, "champion"),
        champion_report=art(Artifact, "cr"),
        decision=art(Artifact, "decision"),
        registry_uri=registry_uri,
        model_name=settings.model_name,
        policy_json=PARAMS["gate_policy_json"],
    )
    return timings


def main() -> dict:
    """Run both measurements on fresh state folders and write the results file."""
    from cli.pipeline import pipeline_arguments
    from pipelines.run import run_local
    from trending.settings import Settings

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        direct_settings = Settings(home=root / "direct", feature_repo=REPO / "feature_repo")
        _ingest(direct_settings)
        timings = _direct(direct_settings, root / "artifacts")

        settings = Settings(home=root / "kfp", feature_repo=REPO / "feature_repo")
        _ingest(settings)
        arguments = {**pipeline_arguments(settings, "training"), **PARAMS}
        start = time.perf_counter()
        decision = run_local("training", arguments, root / "kfp-root", root / "pipeline.log")
        wall = time.perf_counter() - start
        verdict = json.loads(Path(decision.path).read_text())

    load_after = os.getloadavg()
    steps = len(timings)
    direct = sum(timings.values())
    results = {
        "command": ".venv/bin/python -m benchmarks pipeline",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in load_after],
        "data": str(DEV_FILE.name) if DEV_FILE.is_file() else "6,000 synthetic titles",
        "pipeline_wall_s": round(wall, 1),
        "direct_sum_s": round(direct, 1),
        "pipeline_to_direct_ratio": round(wall / direct, 2),
        "steps_timed": steps,
        "overhead_per_step_s": round((wall - direct) / steps, 2),
        "goal_overhead_per_step_s": 1.5,
        "direct_step_s": {k: round(v, 2) for k, v in timings.items()},
        "champion": verdict["choice"]["champion"],
        "note": "pipeline steps after the gate (drift detector, card, register) run only when the gate passes; "
        "they are not in the direct sum, so a passing run slightly overstates the overhead",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
