"""The registry's layout in its object store: keys, and reads of records and aliases.

The base of the :class:`~trending.registry.Registry` layers (layout, events, versions, aliases,
gc); each layer uses only the ones below it.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Self

from trending.registry.objectstore import ObjectNotFoundError, ObjectStore, open_store
from trending.registry.records import (
    ALIAS_RE,
    AliasRecord,
    VersionRecord,
    check_alias,
    number_of,
)


class RegistryLayout:
    """Where one model's records, aliases, claims and pins live in one object store."""

    def __init__(self, store: ObjectStore, model_name: str) -> None:
        self.store = store
        self.model_name = model_name
        self.root = f"models/{model_name}"

    @classmethod
    def from_uri(cls, uri: str, model_name: str) -> Self:
        """Open the registry at ``file:///dir`` or ``s3://bucket/prefix`` (credentials: env)."""
        return cls(open_store(uri), model_name)

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
        return {n for k in keys if (n := number_of(k)) is not None}

    # ---- reads -------------------------------------------------------------------------------

    def _read_record(self, version: int) -> VersionRecord | None:
        try:
            data, _ = self.store.get_bytes(self._record_key(version))
        except ObjectNotFoundError:
            return None
        return VersionRecord.model_validate_json(data)

    def _records(self) -> list[tuple[VersionRecord, str]]:
        out = []
        for key in self.store.list(f"{self.root}/records"):
            if number_of(key) is None:
                continue
            with suppress(ObjectNotFoundError):
                data, etag = self.store.get_bytes(key)
                out.append((VersionRecord.model_validate_json(data), etag))
        return sorted(out, key=lambda pair: pair[0].version)

    def _read_alias(self, name: str) -> tuple[AliasRecord | None, str | None]:
        try:
            data, etag = self.store.get_bytes(self._alias_key(name))
        except ObjectNotFoundError:
            return None, None
        return AliasRecord.model_validate_json(data), etag

    def alias(self, name: str) -> AliasRecord | None:
        """The alias record, or None when the alias is not set (or was cleared)."""
        record, _ = self._read_alias(check_alias(name))
        return record if record is not None and record.version is not None else None

    def _alias_version(self, name: str) -> int | None:
        record = self.alias(name)
        return record.version if record is not None else None

    def aliases(self) -> dict[str, AliasRecord]:
        """Every alias that is set, by name."""
        out = {}
        for key in self.store.list(f"{self.root}/aliases"):
            name = key.rsplit("/", 1)[-1].removesuffix(".json")
            if ALIAS_RE.match(name) and (record := self.alias(name)) is not None:
                out[name] = record
        return out
