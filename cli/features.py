"""``trending features``: apply the Feast repo and materialize a snapshot."""

from __future__ import annotations

import typer

from cli.common import console, failures_as_messages, load_settings
from trending.data.ingest import feature_store, publish_features, snapshot_store

app = typer.Typer(
    help="Feast: register feature definitions and load the online store.", no_args_is_help=True
)


@app.command()
def apply() -> None:
    """Register the entities, feature views and services of feature_repo/."""
    settings = load_settings()
    with failures_as_messages(FileNotFoundError):
        names = feature_store(settings).apply()
    console.print(f"applied: {', '.join(names)}")


@app.command()
def materialize(
    snapshot_id: str | None = typer.Argument(
        None, help="Snapshot to serve features from (default: newest)."
    ),
) -> None:
    """Publish a snapshot's titles as features and load them into the online store."""
    settings = load_settings()
    if snapshot_id is None:
        latest = snapshot_store(settings).latest()
        if latest is None:
            console.print("no snapshot yet: run `trending data ingest` first")
            raise typer.Exit(1)
        snapshot_id = latest.snapshot_id
    with failures_as_messages(KeyError, FileNotFoundError):
        rows = publish_features(settings, snapshot_id)
    console.print(f"materialized {rows} titles from {snapshot_id}")
