"""Registry records: the errors, the pydantic records stored as JSON objects, and their checks.

Every other registry module builds on these; nothing here touches the object store.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PRODUCTION = "production"
CANARY = "canary"
LATEST = "latest"
DEFAULT_MODEL_NAME = "genre-classifier"

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
HISTORY_LIMIT = 50
ROLLBACK_DEPTH = 20


class RegistryError(Exception):
    """Base of every registry error; the message says what to do next."""


class VersionNotFoundError(RegistryError, LookupError):
    """No complete version with that number (never registered, or removed by gc)."""


class AliasNotFoundError(RegistryError, LookupError):
    """The alias is not set."""


class AliasConflictError(RegistryError):
    """The alias changed between reading and writing it: another promotion won."""


class IncompleteVersionError(RegistryError):
    """A bundle or stored version is missing files or fails its checksums."""


class RollbackUnavailableError(RegistryError):
    """The alias has no earlier version to go back to."""


class EventKindError(RegistryError, ValueError):
    """An event kind that is malformed or reserved for the registry itself."""


class Lineage(BaseModel):
    """Where a version came from."""

    data_snapshot_id: str | None = None
    code_version: str = "unknown"
    run_record: dict[str, Any] = Field(default_factory=dict)
    parent_version: int | None = Field(
        None, description="The production version when this one was registered."
    )
    has_drift_detector: bool = Field(False, description="Whether the bundle holds drift/.")


class VersionRecord(BaseModel):
    """One version: its manifest summary, lineage and state."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    version: int
    status: Literal["published", "abandoned", "deleted"]
    uri: str = Field(description="Where the bundle files live (a folder URI).")
    registered_at: datetime
    actor: str
    reason: str
    model_family: str | None = None
    genres: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")
    size_bytes: int = 0
    manifest_sha256: str | None = None
    lineage: Lineage = Field(default_factory=Lineage)
    status_changed_at: datetime | None = None
    status_reason: str | None = None


class AliasChange(BaseModel):
    """One entry of an alias's history."""

    action: Literal["promote", "rollback", "clear", "revert"]
    version: int | None
    from_version: int | None
    actor: str
    reason: str
    at: datetime
    evidence: dict[str, Any] = Field(default_factory=dict)


class AliasRecord(BaseModel):
    """A named pointer to a version, with the stack rollback pops and a bounded history."""

    model_name: str
    name: str
    version: int | None = Field(description="None once cleared.")
    actor: str
    reason: str
    updated_at: datetime
    evidence: dict[str, Any] = Field(default_factory=dict)
    previous: list[int] = Field(
        default_factory=list, description="Earlier versions, most recent last; rollback pops it."
    )
    history: list[AliasChange] = Field(default_factory=list)
    nonce: str = Field(default_factory=lambda: uuid.uuid4().hex)


class Event(BaseModel):
    """One audit-log entry: who did what, when and why."""

    id: str
    model_name: str
    kind: str
    version: int | None = None
    actor: str
    reason: str
    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class VersionClaim(BaseModel):
    """Reserves a version number while its files upload (``claims/<n>.json``)."""

    version: int
    actor: str
    created_at: datetime
    token: str = Field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = Field(default_factory=os.getpid)


class PinRecord(BaseModel):
    """Keeps a version through gc (``pins/<n>.json``)."""

    version: int
    actor: str
    reason: str
    at: datetime


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def number_of(key: str) -> int | None:
    """The version number a key such as ``.../records/7.json`` names, or None."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(stem) if stem.isdigit() else None


def check_actor_reason(actor: str, reason: str) -> None:
    """Refuse an empty actor or reason: the audit log needs both."""
    if not actor.strip():
        raise RegistryError("actor is empty: say who is acting (a user or a service name)")
    if not reason.strip():
        raise RegistryError("reason is empty: say why, it is kept in the audit log")


def check_alias(name: str) -> str:
    """Return ``name`` if it is a valid alias name; refuse it otherwise."""
    if name == LATEST or not ALIAS_RE.match(name):
        raise RegistryError(
            f"invalid alias {name!r}: use lowercase letters, digits, '-' or '_', starting with a "
            f"letter ({LATEST!r} is reserved for the newest version)"
        )
    return name
