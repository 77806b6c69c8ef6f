"""``trending data``: ingest, validate and list snapshots."""

from __future__ import annotations

import typer
from rich.table import Table

from trending.cli.common import console, failures_as_messages, load_settings
from trending.ingest import RejectRateExceededError, data_store_uri, ingest_frame
from trending.objectstore import open_store
from trending.snapshots import SnapshotStore
from trending.synthetic import generate_titles

app = typer.Typer(help="Ingest titles, validate them, and list dataset snapshots.", no_args_is_help=True)


@app.command()
def ingest(
    source: str = typer.Option("synthetic", help="Where titles come from: synthetic."),
    rows: int = typer.Option(1000, min=1, max=1_000_000, help="Rows to generate (synthetic)."),
    seed: int = typer.Option(7, help="Random seed (synthetic)."),
    max_reject_rate: float = typer.Option(0.2, min=0.0, max=1.0, help="Fail the batch above this."),
) -> None:
    """Validate a batch, quarantine bad rows, and write a content-addressed snapshot."""
    settings = load_settings()
    if source != "synthetic":
        raise typer.BadParameter(f"unknown source {source!r}; choose: synthetic", param_hint="--source")
    frame = generate_titles(rows, seed=seed)
    with failures_as_messages(RejectRateExceededError, ValueError):
        result = ingest_frame(
            frame, settings, source=source, params={"rows": rows, "seed": seed}, max_reject_rate=max_reject_rate
        )
    counts = result.report.counts
    console.print(
        f"snapshot [bold]{result.manifest.snapshot_id}[/bold]: in={counts['in']} "
        f"accepted={counts['accepted']} rejected={counts['rejected']}"
    )


@app.command()
def snapshots() -> None:
    """List the dataset snapshots, oldest first."""
    settings = load_settings()
    table = Table("snapshot", "source", "accepted", "rejected", "parent", "created")
    for m in SnapshotStore(open_store(data_store_uri(settings))).list():
        table.add_row(
            m.snapshot_id, m.source, str(m.counts["accepted"]), str(m.counts["rejected"]),
            m.parent or "-", m.created_at.isoformat(timespec="seconds"),
        )  # fmt: skip
    console.print(table)
