"""``trending demo``: the whole loop on this machine, with the real libraries.

synthetic titles -> validation (bad rows quarantined) -> snapshot -> Feast apply + materialize ->
KFP training pipeline (kfp.local) -> registry -> KServe ModelServer -> V1 and V2 requests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pandas as pd
import typer

from trending.cli.common import console, load_settings
from trending.cli.pipeline import pipeline_arguments
from trending.ingest import ingest_frame, publish_features
from trending.processes import free_port, running_service
from trending.registry import Registry
from trending.runs import RunLog
from trending.synthetic import generate_titles

# BERT on a laptop CPU: one short epoch keeps the demo in minutes (the pipeline default is 3).
DEMO_TRAINING = {"bert_params_json": '{"epochs": 1, "max_length": 128}'}
SAMPLE_PLOTS = (
    "A haunted house wakes a possessed demon and a family lives through a night of terror.",
    "Two detectives chase a cartel after a bank heist goes wrong and a murder follows.",
    "An alien spaceship lands and a robot must save the planet in the far future.",
)


def _with_bad_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Three broken rows, to show that validation quarantines them with reasons."""
    bad = frame.head(3).copy()
    bad["title_id"] = ["bad:empty-plot", "bad:unknown-genre", frame["title_id"].iloc[0]]
    bad.loc[bad.index[0], "plot"] = "   "
    bad.loc[bad.index[1], "genres"] = ["Cyberpunk"]
    return pd.concat([frame, bad], ignore_index=True)


def demo(
    rows: int = typer.Option(1200, min=100, max=100_000, help="Synthetic titles to train on."),
) -> None:
    """Run data -> Feast -> KFP (local) -> registry -> KServe, then query the model."""
    from pipelines.run import run_local

    base = load_settings()
    home = base.home / "demo"
    shutil.rmtree(home, ignore_errors=True)
    settings = base.model_copy(update={"home": home, "registry_uri": None})

    console.rule("1. data: synthetic titles, validated and snapshotted")
    result = ingest_frame(_with_bad_rows(generate_titles(rows, seed=settings.seed)), settings, source="synthetic")
    counts = result.report.counts
    console.print(f"in={counts['in']} accepted={counts['accepted']} rejected={counts['rejected']}")
    for _, bad in result.report.rejected.iterrows():
        console.print(f"  quarantined row {bad['row']} ({bad['title_id']}): {bad['reason']}")
    snapshot_id = result.manifest.snapshot_id
    console.print(f"snapshot {snapshot_id}")

    console.rule("2. features: Feast apply + materialize (file offline store, SQLite online store)")
    console.print(f"{publish_features(settings, snapshot_id)} titles in the online store")

    console.rule("3. training pipeline on kfp.local (SubprocessRunner)")
    log = home.resolve() / "logs" / "pipeline.log"
    arguments = {**pipeline_arguments(settings, "training", snapshot_id=snapshot_id), **DEMO_TRAINING}
    decision = run_local("training", arguments, home.resolve() / "kfp", log)
    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    run_id = json.loads(Path(decision.path).read_text())["run_id"]
    run = RunLog.from_uri(settings.resolved_registry_uri, settings.model_name).get(run_id)
    for family, metrics in run.metrics.items():
        console.print(f"  {family:8s} micro-F1={metrics['micro_f1']:.3f} macro-F1={metrics['macro_f1']:.3f}")
    console.print(f"champion: {run.champion}; registered version {run.registered_version} (step logs: {log})")
    if registry.alias("production") is None:
        raise typer.Exit(1)

    console.rule("4. serving: KServe ModelServer loading the production bundle from the registry")
    http_port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    args = [
        "--model_name", settings.model_name, "--registry_uri", settings.resolved_registry_uri,
        "--cache_dir", str(home / "bundles"), "--http_port", str(http_port), "--grpc_port", str(grpc_port),
    ]  # fmt: skip
    ready = f"{url}/v2/models/{settings.model_name}/ready"
    with running_service("serving.predictor", args, ready, home / "logs" / "predictor.log"):
        v1 = httpx.post(
            f"{url}/v1/models/{settings.model_name}:predict",
            json={"instances": [{"title_id": f"demo:{i}", "plot": p} for i, p in enumerate(SAMPLE_PLOTS)]},
            timeout=30,
        ).json()
        for plot, prediction in zip(SAMPLE_PLOTS, v1["predictions"], strict=True):
            top = sorted(prediction["scores"].items(), key=lambda kv: -kv[1])[:3]
            console.print(f"[bold]V1[/bold] {plot[:60]}…\n    genres={prediction['genres']} top={top}")
        v2 = httpx.post(
            f"{url}/v2/models/{settings.model_name}/infer",
            json={"inputs": [{"name": "plot", "shape": [1], "datatype": "BYTES", "data": [SAMPLE_PLOTS[0]]}]},
            timeout=30,
        ).json()
        console.print(f"[bold]V2[/bold] outputs={json.dumps(v2['outputs'][0]['data'])}")
        bad = httpx.post(f"{url}/v1/models/{settings.model_name}:predict", json={"instances": [{"plot": " "}]})
        console.print(f"[bold]bad request[/bold] -> {bad.status_code} {bad.json()}")
    console.rule(f"done: every process the demo started has stopped; state and logs in {home}")


