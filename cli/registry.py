"""``trending registry``: list, inspect, promote, roll back, canary, audit log and gc."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, failures_as_messages, load_settings
from trending.registry import PRODUCTION, Registry, RegistryError
from trending.registry.objectstore import PreconditionFailedError

app = typer.Typer(
    help="The model registry: versions, aliases (production, canary), audit log and gc.",
    no_args_is_help=True,
)

_ACTOR = typer.Option(
    None,
    "--actor",
    envvar="TRENDING_ACTOR",
    help="Who acts, for the audit log. Default: $TRENDING_ACTOR, else the login name.",
)
_REASON = typer.Option(..., "--reason", "-r", help="Why, for the audit log (required).")
_BUNDLE = typer.Argument(..., exists=True, file_okay=False, help="A bundle folder.")
_RUN_RECORD = typer.Option(None, help="JSON file with the training run record.")
_EVIDENCE = typer.Option(
    None, "--evidence", help="JSON object kept with the change, e.g. '{\"f1\": 0.71}'."
)
# What a registry command may fail with that the user can act on.
_EXPECTED = (RegistryError, PreconditionFailedError, ValueError)


def _registry() -> Registry:
    settings = load_settings()
    with failures_as_messages(*_EXPECTED):
        return Registry.from_uri(settings.resolved_registry_uri, settings.model_name)


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


def _evidence(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--evidence") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--evidence")
    return value


@app.command("list")
def list_versions() -> None:
    """List the complete versions with their aliases and pins."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        versions = registry.list_versions()
        aliases = registry.aliases()
        pinned = set(registry.pinned())
    by_version: dict[int, list[str]] = {}
    for name, record in aliases.items():
        by_version.setdefault(record.version or 0, []).append(name)
    table = Table("version", "aliases", "family", "snapshot", "parent", "registered", "by")
    for v in versions:
        tags = sorted(by_version.get(v.version, [])) + (["pinned"] if v.version in pinned else [])
        table.add_row(
            str(v.version), ", ".join(tags) or "-", v.model_family or "-",
            v.lineage.data_snapshot_id or "-", str(v.lineage.parent_version or "-"),
            v.registered_at.isoformat(timespec="seconds"), v.actor,
        )  # fmt: skip
    console.print(table)
    if not versions:
        console.print(f"{registry.model_name} has no versions yet in {registry.store.uri}")


@app.command()
def show(ref: str = typer.Argument(..., help="Version number, 'latest' or an alias.")) -> None:
    """Show one version: manifest summary, files, lineage (as JSON)."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        version = int(ref) if ref.isdigit() else registry.resolve(ref)
        record = registry.show(version)
    console.print_json(record.model_dump_json())


@app.command()
def register(
    bundle_dir: Path = _BUNDLE,
    actor: str | None = _ACTOR,
    reason: str = _REASON,
    run_record: Path | None = _RUN_RECORD,
    allow_missing_card: bool = typer.Option(
        False,
        "--allow-missing-card",
        help="Register a bundle without a model card (card/model_card.json in its manifest).",
    ),
) -> None:
    """Upload a bundle as the next version (visible only once every file verified).

    The bundle must carry its model card (the training pipeline's model-card step writes it)
    unless --allow-missing-card. It is signed first when TRENDING_BUNDLE_SIGNING_KEY(_FILE) is
    set, as the pipeline's register step does.
    """
    from trending.modelling.bundle import BundleTrust, sign_if_configured
    from trending.rollout.release import MODEL_CARD_FILE, has_model_card

    settings = load_settings()
    registry = _registry()
    record = json.loads(run_record.read_text()) if run_record else None
    with failures_as_messages(*_EXPECTED):
        if not has_model_card(bundle_dir) and not allow_missing_card:
            raise ValueError(
                f"{bundle_dir} has no model card ({MODEL_CARD_FILE} is not in its manifest): "
                "register bundles the training pipeline carded, or pass --allow-missing-card"
            )
        trust = BundleTrust.from_settings(settings)
        sign_if_configured(bundle_dir, trust)
        version = registry.register_version(
            bundle_dir, actor=_actor(actor), reason=reason, run_record=record
        )
    notes = [] if has_model_card(bundle_dir) else ["without a model card"]
    notes.append("signed" if trust.signing_key else "unsigned: no TRENDING_BUNDLE_SIGNING_KEY")
    console.print(
        f"registered {registry.model_name} version [bold]{version}[/bold] ({'; '.join(notes)})"
    )


@app.command()
def promote(
    version: int = typer.Argument(..., help="The version to promote."),
    alias: str = typer.Option(PRODUCTION, help="The alias to move."),
    actor: str | None = _ACTOR,
    reason: str = _REASON,
    evidence: str | None = _EVIDENCE,
) -> None:
    """Point an alias (default: production) at a version; the old one becomes the rollback."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        record = registry.promote(
            version, actor=_actor(actor), reason=reason, alias=alias, evidence=_evidence(evidence)
        )
    console.print(f"{alias} -> version [bold]{record.version}[/bold]")


@app.command()
def rollback(
    alias: str = typer.Option(PRODUCTION, help="The alias to roll back."),
    actor: str | None = _ACTOR,
    reason: str = _REASON,
    evidence: str | None = _EVIDENCE,
) -> None:
    """Point an alias back at the version it named before its last promotion."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        record = registry.rollback(
            actor=_actor(actor), reason=reason, alias=alias, evidence=_evidence(evidence)
        )
    console.print(f"{alias} rolled back to version [bold]{record.version}[/bold]")


@app.command("set-canary")
def set_canary(
    version: int = typer.Argument(..., help="The version to canary."),
    actor: str | None = _ACTOR,
    reason: str = _REASON,
) -> None:
    """Start (or replace) the canary."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        record = registry.set_canary(version, actor=_actor(actor), reason=reason)
    console.print(f"canary -> version [bold]{record.version}[/bold]")


@app.command("clear-canary")
def clear_canary(actor: str | None = _ACTOR, reason: str = _REASON) -> None:
    """Stop the canary (does nothing when none is set)."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        registry.clear_canary(actor=_actor(actor), reason=reason)
    console.print("canary cleared")


def _set_pin(version: int, actor: str | None, reason: str, *, keep: bool) -> None:
    """Pin (``keep``) or unpin a version in the registry and say which."""
    registry = _registry()
    change = registry.pin if keep else registry.unpin
    with failures_as_messages(*_EXPECTED):
        change(version, actor=_actor(actor), reason=reason)
    console.print(f"version {version} {'pinned' if keep else 'unpinned'}")


@app.command()
def pin(
    version: int = typer.Argument(..., help="The version gc must keep."),
    actor: str | None = _ACTOR,
    reason: str = _REASON,
) -> None:
    """Keep a version through every gc."""
    _set_pin(version, actor, reason, keep=True)


@app.command()
def unpin(
    version: int = typer.Argument(..., help="The pinned version."),
    actor: str | None = _ACTOR,
    reason: str = _REASON,
) -> None:
    """Let gc remove a version again."""
    _set_pin(version, actor, reason, keep=False)


@app.command()
def log(
    limit: int = typer.Option(50, min=1, help="Show the last N events."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Show the audit log: who did what, when and why."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        events = registry.events(limit=limit)
    if as_json:
        for event in events:
            typer.echo(event.model_dump_json())
        return
    table = Table("when", "kind", "version", "actor", "reason", "details")
    for e in events:
        # Event text comes from outside (alert labels, reasons): shown as text, never as markup.
        cells = [
            e.at.isoformat(timespec="seconds"),
            e.kind,
            str(e.version or "-"),
            e.actor,
            e.reason,
            json.dumps(e.details, sort_keys=True, default=str)[:80],
        ]
        table.add_row(*(escape(cell) for cell in cells))
    console.print(table)


@app.command()
def gc(
    keep_last: int = typer.Option(5, min=0, help="Keep the N newest versions."),
    grace_seconds: float = typer.Option(
        3600.0,
        min=0.0,
        help="Uploads unfinished for longer than this are abandoned; their temp files and "
        "incomplete multipart uploads removed.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
    actor: str | None = _ACTOR,
) -> None:
    """Remove versions no alias, pin or keep-last protects, and stale partial uploads."""
    registry = _registry()
    with failures_as_messages(*_EXPECTED):
        result = registry.collect(
            keep_last=keep_last, dry_run=dry_run, grace_seconds=grace_seconds, actor=_actor(actor)
        )
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb}: {', '.join(map(str, result.versions)) or 'nothing'}")
    if result.debris:
        console.print(
            f"{verb} {len(result.debris)} leftover(s) of interrupted writes "
            "(temp files, incomplete multipart uploads)"
        )
