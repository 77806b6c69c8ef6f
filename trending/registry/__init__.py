"""The model registry: immutable versions, atomic aliases, an append-only event log, lineage, gc.

Everything lives in one object store (a local folder or an S3 bucket), under ``models/<name>/``::

    versions/<n>/...        the bundle, byte for byte (manifest.json included)
    claims/<n>.json         reserves number n while its files upload (create-only)
    records/<n>.json        the commit point, created exactly once: "published" or "abandoned";
                            gc later turns a published record into a "deleted" tombstone
    aliases/<alias>.json    small pointer objects, replaced by compare-and-swap on the ETag
    pins/<n>.json           versions gc must keep
    events/<time>-<id>.json one object per event, create-only, never rewritten

A version is visible (listable, loadable, promotable) only through a published record, and that
record is written with a create-only PUT after every file was uploaded and read back with its
manifest checksum. Whoever creates ``records/<n>.json`` first wins: the uploader (published) or gc
abandoning a stale claim (abandoned), so a crash at any point leaves all of a version or none.
Records are never removed, so numbers never repeat. See docs/adr/0003-registry-cas.md.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trending.modelling.bundle import (
    MANIFEST_NAME,
    BundleError,
    read_manifest,
    sha256_file,
    verify_bundle,
)
from trending.registry.objectstore import (
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    open_store,
)

PRODUCTION = "production"
CANARY = "canary"
LATEST = "latest"
DEFAULT_MODEL_NAME = "genre-classifier"

# Kinds the registry writes itself; log_event refuses them so the log cannot claim, say, a
# promotion that never moved an alias.
REGISTRY_EVENT_KINDS = frozenset(
    {"register", "promote", "rollback", "canary_start", "canary_stop", "pin", "unpin", "gc"}
)
# Kinds other parts of the platform write through log_event (any other well-formed kind is fine).
KNOWN_EXTERNAL_EVENT_KINDS = frozenset(
    {"retrain_requested", "retrain_started", "retrain_finished", "gate_decision"}
)

_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_HISTORY_LIMIT = 50
_ROLLBACK_DEPTH = 20


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


class _Claim(BaseModel):
    version: int
    actor: str
    created_at: datetime
    token: str = Field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = Field(default_factory=os.getpid)


class _Pin(BaseModel):
    version: int
    actor: str
    reason: str
    at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _number_of(key: str) -> int | None:
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(stem) if stem.isdigit() else None


def _check_actor_reason(actor: str, reason: str) -> None:
    if not actor.strip():
        raise RegistryError("actor is empty: say who is acting (a user or a service name)")
    if not reason.strip():
        raise RegistryError("reason is empty: say why, it is kept in the audit log")


def _check_alias(name: str) -> str:
    if name == LATEST or not _ALIAS_RE.match(name):
        raise RegistryError(
            f"invalid alias {name!r}: use lowercase letters, digits, '-' or '_', starting with a "
            f"letter ({LATEST!r} is reserved for the newest version)"
        )
    return name


class Registry:
    """Versions, aliases, events and lineage of one model in one object store."""

    _clock_lock = threading.Lock()
    _last_event_time: datetime | None = None

    def __init__(self, store: ObjectStore, model_name: str) -> None:
        self.store = store
        self.model_name = model_name
        self.root = f"models/{model_name}"

    @classmethod
    def from_uri(cls, uri: str, model_name: str) -> Registry:
        """Open the registry at ``file:///dir`` or ``s3://bucket/prefix`` (credentials: env)."""
        return cls(open_store(uri), model_name)

    # ---- keys -------------------------------------------------------------------------------

    def _files_prefix(self, version: int) -> str:
        return f"{self.root}/versions/{version}"

    def _record_key(self, version: int) -> str:
        return f"{self.root}/records/{version}.json"

    def _claim_key(self, version: int) -> str:
        return f"{self.root}/claims/{version}.json"

    def _alias_key(self, name: str) -> str:
        return f"{self.root}/aliases/{name}.json"

    def _pin_key(self, version: int) -> str:
        return f"{self.root}/pins/{version}.json"

    def _numbers(self, folder: str) -> set[int]:
        keys = self.store.list(f"{self.root}/{folder}")
        return {n for k in keys if (n := _number_of(k)) is not None}

    # ---- versions ---------------------------------------------------------------------------

    def register_version(
        self,
        bundle_dir: Path,
        *,
        actor: str,
        reason: str,
        run_record: dict[str, Any] | None = None,
    ) -> int:
        """Upload a bundle as the next version; it becomes visible only once fully verified.

        Args:
            bundle_dir: A bundle folder (manifest.json plus the files it lists).
            actor: Who registers (a user or service name).
            reason: Why, for the audit log.
            run_record: The training run's record (ids, parameters, metrics), kept as lineage.

        Returns:
            The new version number.

        Raises:
            IncompleteVersionError: The bundle does not verify locally, or a file did not arrive
                intact (nothing is published then).
        """
        _check_actor_reason(actor, reason)
        bundle_dir = Path(bundle_dir)
        try:
            manifest = verify_bundle(bundle_dir)
        except BundleError as exc:
            raise IncompleteVersionError(f"cannot register {bundle_dir}: {exc}") from None
        expected = dict(manifest.files)
        manifest_sha = sha256_file(bundle_dir / MANIFEST_NAME)
        run_record = dict(run_record or {})
        parent = self._alias_version(PRODUCTION)

        version = self._claim_number(actor)
        prefix = self._files_prefix(version)
        try:
            # The manifest goes last: a folder with a manifest looks like a bundle to tools.
            for rel in sorted(expected):
                self.store.put_file(f"{prefix}/{rel}", bundle_dir / rel)
            self.store.put_file(f"{prefix}/{MANIFEST_NAME}", bundle_dir / MANIFEST_NAME)
            for rel, sha in [*sorted(expected.items()), (MANIFEST_NAME, manifest_sha)]:
                if self.store.sha256(f"{prefix}/{rel}") != sha:
                    raise IncompleteVersionError(
                        f"{rel} of version {version} of {self.model_name} did not arrive intact "
                        "(its checksum differs after upload); nothing was published — check the "
                        "store and register the bundle again"
                    )
            record = VersionRecord(
                model_name=self.model_name,
                version=version,
                status="published",
                uri=f"{self.store.uri}/{prefix}",
                registered_at=_now(),
                actor=actor,
                reason=reason,
                model_family=manifest.model_family,
                genres=manifest.genres,
                metrics=manifest.metrics,
                files=expected,
                size_bytes=sum((bundle_dir / rel).stat().st_size for rel in expected),
                manifest_sha256=manifest_sha,
                lineage=Lineage(
                    data_snapshot_id=manifest.data_snapshot_id
                    or run_record.get("data_snapshot_id"),
                    code_version=manifest.code_version
                    if manifest.code_version != "unknown"
                    else str(run_record.get("code_version", "unknown")),
                    run_record=run_record,
                    parent_version=parent,
                    has_drift_detector=any(rel.startswith("drift/") for rel in expected),
                ),
            )
            try:
                self.store.put_bytes(
                    self._record_key(version), record.model_dump_json().encode(), if_none_match=True
                )
            except PreconditionFailedError:
                raise IncompleteVersionError(
                    f"version {version} of {self.model_name} was abandoned by gc while it "
                    "uploaded (the upload outlived gc's grace period); register the bundle again"
                ) from None
        except BaseException:
            self._abandon(version, f"registration by {actor} failed")
            raise
        with suppress(Exception):
            self.store.delete(self._claim_key(version))
        self._append_event(
            "register",
            actor=actor,
            reason=reason,
            version=version,
            details={
                "parent_version": parent,
                "data_snapshot_id": record.lineage.data_snapshot_id,
                "code_version": record.lineage.code_version,
                "metrics": manifest.metrics,
                "files": len(expected),
                "size_bytes": record.size_bytes,
            },
        )
        return version

    def _claim_number(self, actor: str) -> int:
        version = max(self._numbers("claims") | self._numbers("records"), default=0) + 1
        while True:
            claim = _Claim(version=version, actor=actor, created_at=_now())
            try:
                self.store.put_bytes(
                    self._claim_key(version), claim.model_dump_json().encode(), if_none_match=True
                )
            except PreconditionFailedError:
                version += 1
                continue
            # A claim is removed once its record exists, so a stale listing can win a freed
            # claim key; the record tells us the number is taken.
            if self.store.exists(self._record_key(version)):
                self.store.delete(self._claim_key(version))
                version += 1
                continue
            return version

    def _abandon(self, version: int, why: str) -> bool:
        """Settle ``version`` as abandoned and remove its files; best effort, never raises.

        Returns:
            Whether the number is now settled as abandoned (False when it was published first,
            or the store could not be reached).
        """
        tombstone = VersionRecord(
            model_name=self.model_name,
            version=version,
            status="abandoned",
            uri=f"{self.store.uri}/{self._files_prefix(version)}",
            registered_at=_now(),
            actor="registry",
            reason=why,
            status_changed_at=_now(),
            status_reason=why,
        )
        try:
            self.store.put_bytes(
                self._record_key(version), tombstone.model_dump_json().encode(), if_none_match=True
            )
        except PreconditionFailedError:
            record = self._read_record(version)
            if record is None or record.status == "published":
                return False
        except Exception:
            return False
        try:
            for key in self.store.list(self._files_prefix(version)):
                self.store.delete(key)
            self.store.delete(self._claim_key(version))
        except Exception:
            return True  # gc finishes the removal later
        return True

    def _read_record(self, version: int) -> VersionRecord | None:
        try:
            data, _ = self.store.get_bytes(self._record_key(version))
        except ObjectNotFoundError:
            return None
        return VersionRecord.model_validate_json(data)

    def _records(self) -> list[tuple[VersionRecord, str]]:
        out = []
        for key in self.store.list(f"{self.root}/records"):
            if _number_of(key) is None:
                continue
            with suppress(ObjectNotFoundError):
                data, etag = self.store.get_bytes(key)
                out.append((VersionRecord.model_validate_json(data), etag))
        return sorted(out, key=lambda pair: pair[0].version)

    def list_versions(self) -> list[VersionRecord]:
        """Every complete (published) version, oldest first."""
        return [r for r, _ in self._records() if r.status == "published"]

    def show(self, version: int) -> VersionRecord:
        """The record of a version: manifest summary, lineage and status.

        A version removed by gc is still shown (status ``deleted``) for the audit trail.

        Raises:
            VersionNotFoundError: No such version.
            IncompleteVersionError: The version never finished uploading.
        """
        record = self._read_record(int(version))
        if record is None:
            raise VersionNotFoundError(
                f"{self.model_name} has no version {version}; "
                "`trending registry list` shows the versions"
            )
        if record.status == "abandoned":
            raise IncompleteVersionError(
                f"version {version} of {self.model_name} never finished uploading "
                f"({record.status_reason}); it cannot be used — register the bundle again"
            )
        return record

    def _published(self, version: int) -> VersionRecord:
        record = self.show(version)
        if record.status != "published":
            raise VersionNotFoundError(
                f"version {version} of {self.model_name} was removed by gc at "
                f"{record.status_changed_at:%Y-%m-%d %H:%M}Z; pick another version "
                "(`trending registry list`)"
            )
        return record

    def resolve(self, ref: str | int) -> int:
        """Turn ``3``, ``"3"``, ``"latest"`` or an alias name into a complete version number.

        Raises:
            VersionNotFoundError: The number names no complete version (or nothing is registered).
            AliasNotFoundError: The alias is not set.
        """
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return self._published(int(ref)).version
        if ref == LATEST:
            versions = self.list_versions()
            if not versions:
                raise VersionNotFoundError(
                    f"{self.model_name} has no versions yet; register a bundle first"
                )
            return versions[-1].version
        record = self.alias(_check_alias(ref))
        if record is None or record.version is None:
            raise AliasNotFoundError(
                f"alias {ref!r} of {self.model_name} is not set; set it with "
                f"`trending registry promote <version> --alias {ref}`"
            )
        return self._published(record.version).version

    # ---- aliases ----------------------------------------------------------------------------

    def _read_alias(self, name: str) -> tuple[AliasRecord | None, str | None]:
        try:
            data, etag = self.store.get_bytes(self._alias_key(name))
        except ObjectNotFoundError:
            return None, None
        return AliasRecord.model_validate_json(data), etag

    def alias(self, name: str) -> AliasRecord | None:
        """The alias record, or None when the alias is not set (or was cleared)."""
        record, _ = self._read_alias(_check_alias(name))
        return record if record is not None and record.version is not None else None

    def _alias_version(self, name: str) -> int | None:
        record = self.alias(name)
        return record.version if record is not None else None

    def aliases(self) -> dict[str, AliasRecord]:
        """Every alias that is set, by name."""
        out = {}
        for key in self.store.list(f"{self.root}/aliases"):
            name = key.rsplit("/", 1)[-1].removesuffix(".json")
            if _ALIAS_RE.match(name) and (record := self.alias(name)) is not None:
                out[name] = record
        return out

    def _swap_alias(
        self, name: str, change: Callable[[AliasRecord | None], AliasRecord | None]
    ) -> tuple[AliasRecord | None, AliasRecord | None]:
        """Compare-and-swap one alias: read it, apply ``change``, write only if unchanged.

        ``change`` returning None means "nothing to do". Returns (before, after).
        """
        key = self._alias_key(name)
        before, etag = self._read_alias(name)
        after = change(before)
        if after is None:
            return before, None
        try:
            self.store.put_bytes(
                key,
                after.model_dump_json().encode(),
                if_none_match=etag is None,
                if_match=etag,
            )
        except PreconditionFailedError:
            raise AliasConflictError(
                f"alias {name!r} of {self.model_name} changed while this update was being made "
                "(a concurrent promote, rollback or canary change won); check "
                "`trending registry list` and retry if the change is still wanted"
            ) from None
        if after.version is not None:
            self._confirm_still_published(name, before, after)
        return before, after

    def _confirm_still_published(
        self, name: str, before: AliasRecord | None, after: AliasRecord
    ) -> None:
        """Undo an alias move whose target gc deleted meanwhile (gc re-checks aliases likewise)."""
        assert after.version is not None
        record = self._read_record(after.version)
        if record is not None and record.status == "published":
            return
        restored = (
            before.model_copy(update={"nonce": uuid.uuid4().hex})
            if before is not None
            else after.model_copy(update={"version": None, "nonce": uuid.uuid4().hex})
        )
        with suppress(PreconditionFailedError, ObjectNotFoundError):
            _, etag = self.store.get_bytes(self._alias_key(name))
            self.store.put_bytes(
                self._alias_key(name), restored.model_dump_json().encode(), if_match=etag
            )
        raise VersionNotFoundError(
            f"version {after.version} of {self.model_name} was removed by gc during the update; "
            f"alias {name!r} was left as it was — pick another version"
        )

    def _move_alias(
        self,
        name: str,
        version: int,
        *,
        action: Literal["promote", "rollback"],
        actor: str,
        reason: str,
        evidence: dict[str, Any] | None,
        new_previous: Callable[[AliasRecord | None], list[int]],
    ) -> Callable[[AliasRecord | None], AliasRecord | None]:
        def change(before: AliasRecord | None) -> AliasRecord | None:
            current = before.version if before is not None else None
            if current == version:
                return None
            at = _now()
            entry = AliasChange(
                action=action,
                version=version,
                from_version=current,
                actor=actor,
                reason=reason,
                at=at,
                evidence=evidence or {},
            )
            history = (before.history if before is not None else []) + [entry]
            return AliasRecord(
                model_name=self.model_name,
                name=name,
                version=version,
                actor=actor,
                reason=reason,
                updated_at=at,
                evidence=evidence or {},
                previous=new_previous(before)[-_ROLLBACK_DEPTH:],
                history=history[-_HISTORY_LIMIT:],
            )

        return change

    def promote(
        self,
        version: int,
        *,
        actor: str,
        reason: str,
        alias: str = PRODUCTION,
        evidence: dict[str, Any] | None = None,
    ) -> AliasRecord:
        """Point ``alias`` at ``version`` atomically; the old target becomes the rollback target.

        Promoting the version the alias already names changes nothing and logs nothing.

        Raises:
            VersionNotFoundError: ``version`` is not a complete version.
            AliasConflictError: The alias changed concurrently; nothing was written.
        """
        _check_actor_reason(actor, reason)
        _check_alias(alias)
        version = self._published(int(version)).version

        def previous(before: AliasRecord | None) -> list[int]:
            if before is None:
                return []
            return before.previous + ([before.version] if before.version is not None else [])

        change = self._move_alias(
            alias,
            version,
            action="promote",
            actor=actor,
            reason=reason,
            evidence=evidence,
            new_previous=previous,
        )
        before, after = self._swap_alias(alias, change)
        if after is None:
            assert before is not None
            return before
        self._append_event(
            "promote",
            actor=actor,
            reason=reason,
            version=version,
            details={
                "alias": alias,
                "from_version": before.version if before is not None else None,
                "evidence": evidence or {},
            },
        )
        return after

    def rollback(
        self,
        *,
        actor: str,
        reason: str,
        alias: str = PRODUCTION,
        evidence: dict[str, Any] | None = None,
    ) -> AliasRecord:
        """Point ``alias`` back at the version it named before the last promotion.

        Raises:
            AliasNotFoundError: The alias is not set.
            RollbackUnavailableError: The alias has no earlier version, or gc removed it.
            AliasConflictError: The alias changed concurrently; nothing was written.
        """
        _check_actor_reason(actor, reason)
        _check_alias(alias)
        current, _ = self._read_alias(alias)
        if current is None or current.version is None:
            raise AliasNotFoundError(
                f"alias {alias!r} of {self.model_name} is not set, so there is nothing to roll "
                "back; promote a version instead"
            )
        if not current.previous:
            raise RollbackUnavailableError(
                f"alias {alias!r} of {self.model_name} has no earlier version to roll back to "
                f"(it has only ever named version {current.version}); promote a version instead"
            )
        target = current.previous[-1]
        try:
            self._published(target)
        except RegistryError as exc:
            raise RollbackUnavailableError(
                f"cannot roll {alias!r} back to version {target}: {exc}"
            ) from None

        def change(before: AliasRecord | None) -> AliasRecord | None:
            # Act only on the state we checked; anything else is a concurrent change.
            if before is None or before.nonce != current.nonce:
                raise AliasConflictError(
                    f"alias {alias!r} of {self.model_name} changed during the rollback; "
                    "check `trending registry list` and retry if still wanted"
                )
            return self._move_alias(
                alias,
                target,
                action="rollback",
                actor=actor,
                reason=reason,
                evidence=evidence,
                new_previous=lambda b: b.previous[:-1] if b is not None else [],
            )(before)

        before, after = self._swap_alias(alias, change)
        assert before is not None and after is not None
        self._append_event(
            "rollback",
            actor=actor,
            reason=reason,
            version=target,
            details={"alias": alias, "from_version": before.version, "evidence": evidence or {}},
        )
        return after

    def set_canary(self, version: int, *, actor: str, reason: str) -> AliasRecord:
        """Start (or replace) the canary: point the ``canary`` alias at ``version``.

        Raises:
            VersionNotFoundError: ``version`` is not a complete version.
            RegistryError: ``version`` is the production version already.
            AliasConflictError: The canary changed concurrently.
        """
        _check_actor_reason(actor, reason)
        version = self._published(int(version)).version
        if self._alias_version(PRODUCTION) == version:
            raise RegistryError(
                f"version {version} of {self.model_name} is production already; "
                "a canary must be a different version"
            )
        change = self._move_alias(
            CANARY,
            version,
            action="promote",
            actor=actor,
            reason=reason,
            evidence=None,
            new_previous=lambda b: [],
        )
        before, after = self._swap_alias(CANARY, change)
        if after is None:
            assert before is not None
            return before
        self._append_event(
            "canary_start",
            actor=actor,
            reason=reason,
            version=version,
            details={"replaced_version": before.version if before is not None else None},
        )
        return after

    def clear_canary(self, *, actor: str, reason: str) -> None:
        """Stop the canary (clear the ``canary`` alias); does nothing when none is set.

        Raises:
            AliasConflictError: The canary changed concurrently.
        """
        _check_actor_reason(actor, reason)

        def change(before: AliasRecord | None) -> AliasRecord | None:
            if before is None or before.version is None:
                return None
            at = _now()
            entry = AliasChange(
                action="clear",
                version=None,
                from_version=before.version,
                actor=actor,
                reason=reason,
                at=at,
            )
            return before.model_copy(
                update={
                    "version": None,
                    "actor": actor,
                    "reason": reason,
                    "updated_at": at,
                    "evidence": {},
                    "previous": [],
                    "history": [*before.history, entry][-_HISTORY_LIMIT:],
                    "nonce": uuid.uuid4().hex,
                }
            )

        before, after = self._swap_alias(CANARY, change)
        if after is not None and before is not None:
            self._append_event(
                "canary_stop", actor=actor, reason=reason, version=before.version, details={}
            )

    # ---- pins -------------------------------------------------------------------------------

    def pin(self, version: int, *, actor: str, reason: str) -> None:
        """Keep ``version`` through every gc until it is unpinned."""
        _check_actor_reason(actor, reason)
        version = self._published(int(version)).version
        pin = _Pin(version=version, actor=actor, reason=reason, at=_now())
        self.store.put_bytes(self._pin_key(version), pin.model_dump_json().encode())
        self._append_event("pin", actor=actor, reason=reason, version=version)

    def unpin(self, version: int, *, actor: str, reason: str) -> None:
        """Let gc remove ``version`` again (when no alias names it)."""
        _check_actor_reason(actor, reason)
        if not self.store.exists(self._pin_key(int(version))):
            raise VersionNotFoundError(
                f"version {version} of {self.model_name} is not pinned; "
                "`trending registry list` shows the pins"
            )
        self.store.delete(self._pin_key(int(version)))
        self._append_event("unpin", actor=actor, reason=reason, version=int(version))

    def pinned(self) -> list[int]:
        """Pinned version numbers, ascending."""
        return sorted(self._numbers("pins"))

    # ---- loading ----------------------------------------------------------------------------

    def download(self, ref: str | int, dest: Path) -> Path:
        """Download a version (by number or alias) into ``dest`` and verify every checksum.

        ``dest`` must be missing or empty; it appears only once the bundle is complete.

        Returns:
            ``dest``, now a verified bundle folder.

        Raises:
            VersionNotFoundError, AliasNotFoundError: ``ref`` names no complete version.
            IncompleteVersionError: A stored file is missing or corrupt.
        """
        record = self._published(self.resolve(ref))
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise RegistryError(f"{dest} exists and is not empty: download into a new folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.download-"))
        prefix = self._files_prefix(record.version)
        try:
            try:
                self.store.get_file(f"{prefix}/{MANIFEST_NAME}", tmp / MANIFEST_NAME)
                if sha256_file(tmp / MANIFEST_NAME) != record.manifest_sha256:
                    raise BundleError("its manifest differs from the registered one")
                for rel in read_manifest(tmp).files:
                    self.store.get_file(f"{prefix}/{rel}", tmp / rel)
                verify_bundle(tmp)
            except (BundleError, ObjectNotFoundError) as exc:
                raise IncompleteVersionError(
                    f"version {record.version} of {self.model_name} in {self.store.uri} is "
                    f"damaged ({exc}); the store was changed outside the registry — "
                    "promote or load another version"
                ) from None
            if dest.exists():
                dest.rmdir()
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    # ---- events -----------------------------------------------------------------------------

    def log_event(
        self,
        kind: str,
        *,
        actor: str,
        reason: str,
        details: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> Event:
        """Append an event written by another part of the platform (pipelines, trigger, canary).

        Args:
            kind: e.g. ``retrain_requested``, ``retrain_started``, ``retrain_finished``,
                ``gate_decision``; register/promote/rollback/canary/pin/gc events are written by
                the registry operations themselves and refused here.
            actor: Who acts.
            reason: Why.
            details: Metrics, evidence, run ids (JSON-serialisable).
            version: The version the event is about, if any.

        Returns:
            The stored event.

        Raises:
            EventKindError: The kind is malformed or reserved.
        """
        if not _KIND_RE.match(kind):
            raise EventKindError(
                f"invalid event kind {kind!r}: use lowercase letters, digits, '_', '.' or '-'"
            )
        if kind in REGISTRY_EVENT_KINDS:
            raise EventKindError(
                f"{kind!r} events are written by the registry operation itself; call "
                "register_version / promote / rollback / set_canary / clear_canary / pin / gc"
            )
        _check_actor_reason(actor, reason)
        return self._append_event(
            kind, actor=actor, reason=reason, version=version, details=details
        )

    def _event_time(self) -> datetime:
        # Strictly increasing within a process, so a process's events keep their order.
        with Registry._clock_lock:
            at = _now()
            last = Registry._last_event_time
            if last is not None and at <= last:
                at = last + timedelta(microseconds=1)
            Registry._last_event_time = at
            return at

    def _append_event(
        self,
        kind: str,
        *,
        actor: str,
        reason: str,
        version: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        at = self._event_time()
        event_id = f"{at:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:12]}"
        event = Event(
            id=event_id,
            model_name=self.model_name,
            kind=kind,
            version=version,
            actor=actor,
            reason=reason,
            at=at,
            details=details or {},
        )
        self.store.put_bytes(
            f"{self.root}/events/{event_id}.json",
            event.model_dump_json().encode(),
            if_none_match=True,
        )
        return event

    def events(self, *, limit: int | None = None) -> list[Event]:
        """Events in the order they happened (oldest first); the last ``limit`` when given."""
        keys = self.store.list(f"{self.root}/events")
        if limit is not None:
            keys = keys[-limit:] if limit > 0 else []
        events = []
        for key in keys:
            with suppress(ObjectNotFoundError):
                data, _ = self.store.get_bytes(key)
                events.append(Event.model_validate_json(data))
        return sorted(events, key=lambda e: (e.at, e.id))

    # ---- gc ---------------------------------------------------------------------------------

    def _protected(self) -> set[int]:
        keep = set(self.pinned())
        for record in self.aliases().values():
            if record.version is not None:
                keep.add(record.version)
            if record.previous:
                keep.add(record.previous[-1])  # the rollback target
        return keep

    def gc(
        self,
        *,
        keep_last: int = 5,
        dry_run: bool = False,
        grace_seconds: float = 3600.0,
        actor: str = "registry-gc",
    ) -> list[int]:
        """Remove versions nobody needs, and leftovers of uploads that never finished.

        Kept: whatever an alias names, each alias's rollback target, pinned versions, and the
        ``keep_last`` newest versions. Uploads whose claim is older than ``grace_seconds`` are
        abandoned (they can no longer publish) and their files removed. Records stay behind as
        tombstones so numbers are never reused.

        Returns:
            The version numbers whose files were (or, with ``dry_run``, would be) removed.
        """
        # Files first, then claims, then records: an uploader claims before it uploads and drops
        # its claim only after its record exists, so every folder we see has one or the other.
        file_numbers = {
            n
            for key in self.store.list(f"{self.root}/versions")
            if (n := _number_of(key.split("/")[3])) is not None
        }
        claims = self._numbers("claims")
        records = {r.version: (r, etag) for r, etag in self._records()}
        published = sorted(n for n, (r, _) in records.items() if r.status == "published")
        keep = self._protected() | set(published[-keep_last:] if keep_last > 0 else [])
        removed: list[int] = []

        for n in published:
            if n in keep:
                continue
            if dry_run or self._delete_version(n, *records[n], actor=actor):
                removed.append(n)

        now = _now()
        for n in sorted((claims | file_numbers) - set(published)):
            record = records.get(n, (None, None))[0]
            if record is None and not self._claim_is_stale(n, now, grace_seconds):
                continue  # still uploading
            if record is not None and n not in file_numbers and n not in claims:
                continue  # already clean
            if dry_run or self._abandon(n, f"gc: upload did not finish within {grace_seconds}s"):
                removed.append(n)

        if removed and not dry_run:
            self._append_event(
                "gc",
                actor=actor,
                reason=f"keep_last={keep_last}, grace_seconds={grace_seconds}",
                details={"removed": sorted(set(removed)), "kept": sorted(keep)},
            )
        return sorted(set(removed))

    def _claim_is_stale(self, version: int, now: datetime, grace_seconds: float) -> bool:
        try:
            data, _ = self.store.get_bytes(self._claim_key(version))
        except ObjectNotFoundError:
            return True  # files without claim or record: leftovers of something unknown
        claim = _Claim.model_validate_json(data)
        return (now - claim.created_at).total_seconds() >= grace_seconds

    def _delete_version(
        self, version: int, record: VersionRecord, etag: str, *, actor: str
    ) -> bool:
        tombstone = record.model_copy(
            update={
                "status": "deleted",
                "status_changed_at": _now(),
                "status_reason": f"removed by gc ({actor})",
            }
        )
        try:
            new_etag = self.store.put_bytes(
                self._record_key(version), tombstone.model_dump_json().encode(), if_match=etag
            )
        except PreconditionFailedError:
            return False
        # Write-then-read against promote's write-then-read: if an alias or pin started naming
        # this version meanwhile, one side sees the other and backs off.
        if version in self._protected():
            with suppress(PreconditionFailedError):
                self.store.put_bytes(
                    self._record_key(version), record.model_dump_json().encode(), if_match=new_etag
                )
            return False
        for key in self.store.list(self._files_prefix(version)):
            self.store.delete(key)
        return True


def stage_new_version(registry: Registry, version: int, *, actor: str, reason: str) -> str:
    """Put a freshly registered version on its way to traffic; return the alias it got.

    The first version has nothing to be compared with and becomes ``production``; every later
    one becomes the ``canary``, which the canary controller promotes or rolls back on evidence.
    """
    if registry.alias("production") is None:
        registry.promote(version, actor=actor, reason=f"first version: {reason}")
        return "production"
    registry.set_canary(version, actor=actor, reason=reason)
    return "canary"


def fetch_bundle(
    registry_uri: str,
    ref: str | int,
    dest_dir: Path,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
) -> Path:
    """The serving contract: download a verified bundle by alias or version number.

    Args:
        registry_uri: ``file:///abs/dir`` or ``s3://bucket/prefix`` (S3 credentials come from
            ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_ENDPOINT_URL``).
        ref: A version number, ``"latest"``, or an alias such as ``"production"``/``"canary"``.
        dest_dir: A new or empty folder to hold the bundle.
        model_name: The registered model.

    Returns:
        ``dest_dir``, holding the bundle with every checksum verified.
    """
    return Registry.from_uri(registry_uri, model_name).download(ref, dest_dir)
