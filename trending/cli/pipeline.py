"""``trending pipeline``: compile pipelines and run them locally with kfp.local."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from trending.cli.common import console, failures_as_messages, load_settings
from trending.ingest import data_store_uri
from trending.objectstore import open_store
from trending.settings import Settings
from trending.snapshots import SnapshotStore

app = typer.Typer(help="Compile, run and submit KFP pipelines.", no_args_is_help=True)


def training_arguments(settings: Settings, snapshot_id: str | None = None) -> dict[str, Any]:
    """Arguments of the training pipeline in the local profile; defaults to the newest snapshot."""
    data_uri = data_store_uri(settings)
    if snapshot_id is None:
        snapshots = SnapshotStore(open_store(data_uri)).list()
        if not snapshots:
            raise ValueError("no dataset snapshot yet: run `trending data ingest` first")
        snapshot_id = snapshots[-1].snapshot_id
    return {
        "data_uri": data_uri,
        "snapshot_id": snapshot_id,
        "feature_repo": str(Path(settings.feature_repo).resolve()),
        "feast_dir": str(settings.feature_store_dir.resolve()),
        "registry_uri": settings.resolved_registry_uri,
        "model_name": settings.model_name,
        "seed": settings.seed,
    }


@app.command("compile")
def compile_(
    output_dir: Path = typer.Option(Path("build/pipelines"), help="Where the IR YAML files go."),
) -> None:
    """Compile every pipeline to KFP IR YAML with the configured component image."""
    from pipelines.run import compile_all

    settings = load_settings()
    for path in compile_all(output_dir, settings.component_image):
        console.print(f"compiled {path}")


@app.command()
def run(
    name: str = typer.Argument("training", help="Pipeline to run."),
    snapshot_id: str | None = typer.Option(None, help="Snapshot to train on (default: newest)."),
) -> None:
    """Run a pipeline locally with kfp.local's SubprocessRunner (no cluster needed)."""
    from pipelines.run import PipelineFailedError, run_local

    settings = load_settings()
    with failures_as_messages(ValueError, PipelineFailedError):
        arguments = training_arguments(settings, snapshot_id)
        version = run_local(name, arguments, settings.home.resolve() / "kfp")
    console.print(f"pipeline {name} finished: registered version {version}")
