"""``trending runs``: list, show and compare training run records."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.common import console, failures_as_messages, load_settings
from trending.modelling.runs import RunLog, RunNotFoundError, compare_runs

app = typer.Typer(
    help="Training run records (params, metrics, snapshot, code version, artifacts).",
    no_args_is_help=True,
)
_EXPECTED = (RunNotFoundError, ValueError)
_RUN_IDS = typer.Argument(..., help="Two or more run ids.")
_FAMILIES = typer.Option(None, "--family", help="Only these families' metrics.")


def _log() -> RunLog:
    settings = load_settings()
    with failures_as_messages(*_EXPECTED):
        return RunLog.from_uri(settings.resolved_registry_uri, settings.model_name)


@app.command("list")
def list_runs(limit: int = typer.Option(20, help="Show the last N runs.")) -> None:
    """List runs, oldest first."""
    log = _log()
    table = Table("run", "status", "started", "snapshot", "champion", "micro-F1", "version")
    for r in log.list(limit=limit):
        best = r.metrics.get(r.champion or "", {}).get("micro_f1")
        table.add_row(
            r.run_id,
            r.status,
            r.started_at.strftime("%Y-%m-%d %H:%M"),
            r.data_snapshot_id or "-",
            r.champion or "-",
            "-" if best is None else f"{best:.3f}",
            "-" if r.registered_version is None else str(r.registered_version),
        )
    console.print(table)


@app.command("show")
def show(run_id: str) -> None:
    """Print one run record as JSON."""
    log = _log()
    with failures_as_messages(*_EXPECTED):
        record = log.get(run_id)
    console.print_json(record.model_dump_json())


@app.command("compare")
def compare(
    run_ids: list[str] = _RUN_IDS,
    family: list[str] | None = _FAMILIES,
) -> None:
    """Print runs side by side: fields and every family's metrics."""
    log = _log()
    with failures_as_messages(*_EXPECTED):
        records = [log.get(r) for r in run_ids]
    rows = compare_runs(records, families=family or None)
    table = Table(*rows[0])
    for row in rows[1:]:
        table.add_row(*row)
    console.print(table)
