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

:class:`Registry` is built in layers, one module each, every layer using only those below it:
``records`` (errors and stored records), ``layout`` (keys and reads), ``events`` (the log),
``versions`` (register, claims, download), ``aliases`` (CAS moves, canary, pins) and ``gc``.
"""

from __future__ import annotations

from trending.registry.aliases import stage_new_version
from trending.registry.events import KNOWN_EXTERNAL_EVENT_KINDS, REGISTRY_EVENT_KINDS
from trending.registry.gc import GarbageCollector
from trending.registry.records import (
    CANARY,
    DEFAULT_MODEL_NAME,
    LATEST,
    PRODUCTION,
    AliasChange,
    AliasConflictError,
    AliasNotFoundError,
    AliasRecord,
    Event,
    EventKindError,
    IncompleteVersionError,
    Lineage,
    RegistryError,
    RollbackUnavailableError,
    VersionNotFoundError,
    VersionRecord,
)


class Registry(GarbageCollector):
    """Versions, aliases, events and lineage of one model in one object store."""


__all__ = [
    "CANARY",
    "DEFAULT_MODEL_NAME",
    "KNOWN_EXTERNAL_EVENT_KINDS",
    "LATEST",
    "PRODUCTION",
    "REGISTRY_EVENT_KINDS",
    "AliasChange",
    "AliasConflictError",
    "AliasNotFoundError",
    "AliasRecord",
    "Event",
    "EventKindError",
    "IncompleteVersionError",
    "Lineage",
    "Registry",
    "RegistryError",
    "RollbackUnavailableError",
    "VersionNotFoundError",
    "VersionRecord",
    "stage_new_version",
]
