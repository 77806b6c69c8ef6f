"""``trending data``: ingest, validate, list snapshots, show a model's data lineage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from cli.common import console, errors, failures_as_messages, load_settings
from trending.data.ingest import (
    RejectRateExceededError,
    check_reject_rate,
    ingest_source,
    publish_features,
    snapshot_store,
)
from trending.data.lineage import data_lineage
from trending.data.schema import ValidationReport, distribution_warnings, validate_titles
from trending.data.snapshots import SnapshotManifest
from trending.data.sources import SOURCE_NAMES, ProgressCallback, open_source
from trending.data.sources.tmdb import TmdbError
from trending.genres import GenreVocabulary
from trending.registry import Registry, RegistryError

app = typer.Typer(
    help="Ingest titles, validate them, list dataset snapshots and show data lineage.",
    no_args_is_help=True,
)
_MAPPING = typer.Option(help="file: column mapping (JSON/YAML), see docs/data.md.")
_EXPECTED = (RejectRateExceededError, TmdbError, ValueError, FileNotFoundError, KeyError)


@contextmanager
def _progress_bars() -> Iterator[ProgressCallback]:
    """Rich progress bars on stderr (only on a terminal); yields a ProgressCallback."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def report(task: str, done: int, total: int | None) -> None:
        if task not in tasks:
            tasks[task] = progress.add_task(task, total=total)
        progress.update(tasks[task], completed=done, total=total)

    with progress:
        yield report


def _print_counts(report: ValidationReport) -> None:
    for _, bad in report.rejected.head(10).iterrows():
        errors.print(f"  quarantined row {bad['row']} ({bad.get('title_id')}): {bad['reason']}")
    if len(report.rejected) > 10:
        errors.print(f"  ... and {len(report.rejected) - 10} more")


def _print_notes(manifest_notes: dict[str, Any], warnings: list[str]) -> None:
    if dropped := manifest_notes.get("dropped_genres"):
        total = sum(dropped.values())
        console.print(f"genre labels dropped by the genre mapping: {total} {dropped}")
    if not_found := manifest_notes.get("not_found"):
        console.print(f"titles listed but gone when fetched (404): {len(not_found)}")
    for warning in warnings:
        console.print(f"[yellow]distribution warning:[/yellow] {warning}")


@app.command()
def ingest(
    source: str = typer.Option(
        "synthetic", help=f"Where titles come from: {', '.join(SOURCE_NAMES)}."
    ),
    path: Annotated[Path | None, typer.Option(help="file: a CSV, Parquet or JSONL file.")] = None,
    mapping: Annotated[Path | None, _MAPPING] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="file/tmdb: event time of the rows (default: see docs/data.md)."),
    ] = None,
    licence: Annotated[
        str | None,
        typer.Option(help="file: the file's licence by name (e.g. tmdb); required (docs/data.md)."),
    ] = None,
    rows: int = typer.Option(1000, min=1, max=1_000_000, help="synthetic: rows to generate."),
    seed: int = typer.Option(7, help="synthetic: random seed."),
    pages: int = typer.Option(
        5, min=1, max=500, help="tmdb: discover pages per kind (20 titles each)."
    ),
    kinds: str = typer.Option("movie,tv", help="tmdb: movie, tv or both."),
    incremental: bool = typer.Option(
        False, help="tmdb: only titles changed since the last snapshot."
    ),
    max_reject_rate: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="Fail the batch above this share of rejects (default: setting).",
    ),
    features: bool = typer.Option(True, help="Materialize the snapshot into Feast afterwards."),
) -> None:
    """Fetch titles, quarantine bad rows, write a content-addressed snapshot, load Feast.

    The API key of the tmdb source comes from TRENDING_TMDB_API_KEY or the file named by
    TRENDING_TMDB_API_KEY_FILE (a mounted Secret), never from a flag.
    """
    settings = load_settings()
    if source not in SOURCE_NAMES:
        raise typer.BadParameter(
            f"unknown source {source!r}; choose: {', '.join(SOURCE_NAMES)}", param_hint="--source"
        )
    params: dict[str, Any] = {
        "synthetic": {"rows": rows, "seed": seed},
        "file": {"path": path, "mapping": mapping, "as_of": as_of, "licence": licence},
        "tmdb": {"pages": pages, "kinds": kinds, "as_of": as_of},
    }[source]
    with failures_as_messages(*_EXPECTED):
        title_source = open_source(source, params, settings)
        with _progress_bars() as progress:
            result = ingest_source(
                title_source,
                settings,
                incremental=incremental,
                max_reject_rate=max_reject_rate,
                progress=progress,
            )
    counts = result.report.counts
    sid = result.manifest.snapshot_id
    console.print(
        f"snapshot [bold]{sid}[/bold]: in={counts['in']} "
        f"accepted={counts['accepted']} rejected={counts['rejected']}"
    )
    _print_counts(result.report)
    _print_notes(result.manifest.notes, result.manifest.warnings)
    if features:
        with failures_as_messages(Exception):
            try:
                published = publish_features(settings, sid)
            except Exception as exc:
                raise RuntimeError(
                    f"snapshot {sid} is written, but loading Feast failed ({exc}); retry with "
                    f"`trending features materialize {sid}`"
                ) from None
        console.print(f"features: {published} titles materialized into the online store")


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="A CSV, Parquet or JSONL file of titles.")],
    mapping: Annotated[Path | None, _MAPPING] = None,
    max_reject_rate: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Exit 1 above this share of rejects (default: setting)."
    ),
    show: int = typer.Option(20, min=0, help="How many rejected rows to list."),
) -> None:
    """Check a file as ingest would, and report; writes nothing."""
    settings = load_settings()
    with failures_as_messages(*_EXPECTED):
        batch = open_source("file", {"path": path, "mapping": mapping}).fetch()
        report = validate_titles(batch.titles, GenreVocabulary())
        previous = snapshot_store(settings).latest("file")
        warnings = (
            distribution_warnings(
                report.accepted, snapshot_store(settings).read(previous.snapshot_id)
            )
            if previous is not None
            else []
        )
    counts = report.counts
    console.print(
        f"{path.name}: in={counts['in']} accepted={counts['accepted']} "
        f"rejected={counts['rejected']}"
    )
    if not report.rejected.empty:
        table = Table("row", "title_id", "reason")
        for _, bad in report.rejected.head(show).iterrows():
            table.add_row(str(bad["row"]), str(bad.get("title_id")), str(bad["reason"]))
        console.print(table)
        reasons = report.rejected["reason"].str.split(":").str[0].value_counts()
        console.print("rejected by field: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    _print_notes(batch.notes, warnings)
    limit = settings.max_reject_rate if max_reject_rate is None else max_reject_rate
    with failures_as_messages(RejectRateExceededError):
        check_reject_rate(report, limit)


@app.command()
def snapshots() -> None:
    """List the dataset snapshots, oldest first."""
    settings = load_settings()
    table = Table(
        "snapshot", "source", "in", "accepted", "rejected", "warnings", "parent", "created"
    )
    with failures_as_messages(*_EXPECTED):
        manifests = snapshot_store(settings).list()
    for m in manifests:
        table.add_row(
            m.snapshot_id,
            m.source,
            str(m.counts["in"]),
            str(m.counts["accepted"]),
            str(m.counts["rejected"]),
            str(len(m.warnings)),
            m.parent or "-",
            m.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


def _snapshot_label(m: SnapshotManifest) -> str:
    asked = {k: v for k, v in m.params.items() if k in ("file", "rows", "seed", "pages", "as_of")}
    return (
        f"snapshot [bold]{m.snapshot_id}[/bold] source={m.source} {asked} "
        f"in={m.counts['in']} accepted={m.counts['accepted']} rejected={m.counts['rejected']} "
        f"schema v{m.schema_version} created {m.created_at.isoformat(timespec='seconds')}"
    )


@app.command()
def lineage(
    version: str = typer.Argument(..., help="A version number, 'latest' or an alias."),
) -> None:
    """Show a model version's data: registry version -> data snapshot -> parent snapshots."""
    settings = load_settings()
    with failures_as_messages(RegistryError, *_EXPECTED):
        registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
        found = data_lineage(registry, snapshot_store(settings), version)
    tree = Tree(
        f"{found.model_name} version [bold]{found.version}[/bold] ({found.model_family or '?'}, "
        f"registered {found.registered_at.isoformat(timespec='seconds')})"
    )
    if found.data_snapshot_id is None:
        tree.add("[yellow]the bundle records no data snapshot[/yellow]")
    node = tree
    for m in found.snapshots:
        node = node.add(_snapshot_label(m))
    if found.missing:
        node.add(
            f"[red]snapshot {found.missing} is not in {snapshot_store(settings).store.uri}[/red]"
        )
    console.print(tree)
