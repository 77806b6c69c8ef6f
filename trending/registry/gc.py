"""Garbage collection: remove versions nobody needs and the leftovers of unfinished uploads."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trending.registry.aliases import Aliases
from trending.registry.objectstore import Debris, ObjectNotFoundError, PreconditionFailedError
from trending.registry.records import VersionClaim, VersionRecord, number_of, utc_now


@dataclass(frozen=True)
class GcResult:
    """What one gc removed.

    Attributes:
        versions: Version numbers whose files were removed (or abandoned uploads settled).
        debris: One line per temp file or incomplete upload removed.
    """

    versions: list[int]
    debris: list[str]


class GarbageCollector(Aliases):
    """Removes unneeded versions; keeps aliased, rollback-target, pinned and newest ones."""

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

        The same as :meth:`collect`, returning only the version numbers removed.
        """
        return self.collect(
            keep_last=keep_last, dry_run=dry_run, grace_seconds=grace_seconds, actor=actor
        ).versions

    def collect(
        self,
        *,
        keep_last: int = 5,
        dry_run: bool = False,
        grace_seconds: float = 3600.0,
        actor: str = "registry-gc",
    ) -> GcResult:
        """Remove versions nobody needs, and leftovers of uploads that never finished.

        Kept: whatever an alias names, each alias's rollback target, pinned versions, and the
        ``keep_last`` newest versions. Uploads whose claim is older than ``grace_seconds`` are
        abandoned (they can no longer publish) and their files removed. Records stay behind as
        tombstones so numbers are never reused.

        Debris (temp files, incomplete multipart uploads; no listing shows them) goes when its
        version number is settled, since nobody can write that version any more; debris outside
        ``versions/`` goes once older than ``grace_seconds``. Settling numbers by their claims
        keeps the decision on this registry's clock, not on the S3 server's upload times.

        Returns:
            What was (or, with ``dry_run``, would be) removed.
        """
        # Files first, then claims, then records: an uploader claims before it uploads and drops
        # its claim only after its record exists, so every folder we see has one or the other.
        debris = self.store.list_debris(self.root)
        file_numbers = {
            n
            for key in [*self.store.list(f"{self.root}/versions"), *(d.key for d in debris)]
            if (n := self._version_of(key)) is not None
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

        now = utc_now()
        for n in sorted((claims | file_numbers) - set(published)):
            record = records.get(n, (None, None))[0]
            if record is None and not self._claim_is_stale(n, now, grace_seconds):
                continue  # still uploading
            if record is not None and n not in file_numbers and n not in claims:
                continue  # already clean
            if dry_run or self._abandon(n, f"gc: upload did not finish within {grace_seconds}s"):
                removed.append(n)

        settled = set(records) | set(removed)
        cleared = [
            d.describe()
            for d in debris
            if self._is_removable(d, settled, now, grace_seconds)
            and (dry_run or self._remove_debris(d))
        ]
        if (removed or cleared) and not dry_run:
            details: dict[str, Any] = {"removed": sorted(set(removed)), "kept": sorted(keep)}
            if cleared:
                details["debris"] = len(cleared)
            self._append_event(
                "gc",
                actor=actor,
                reason=f"keep_last={keep_last}, grace_seconds={grace_seconds}",
                details=details,
            )
        return GcResult(versions=sorted(set(removed)), debris=cleared)

    def _version_of(self, key: str) -> int | None:
        """The version number of a key under ``versions/<n>/``, else None."""
        parts = key.removeprefix(f"{self.root}/").split("/")
        return number_of(parts[1]) if len(parts) > 2 and parts[0] == "versions" else None

    def _is_removable(
        self, debris: Debris, settled: set[int], now: datetime, grace_seconds: float
    ) -> bool:
        version = self._version_of(debris.key)
        if version is not None:
            return version in settled
        return (now - debris.started_at).total_seconds() >= grace_seconds

    def _remove_debris(self, debris: Debris) -> bool:
        try:
            self.store.remove_debris(debris)
        except Exception:
            return False  # the next gc tries again
        return True

    def _claim_is_stale(self, version: int, now: datetime, grace_seconds: float) -> bool:
        try:
            data, _ = self.store.get_bytes(self._claim_key(version))
        except ObjectNotFoundError:
            return True  # files without claim or record: leftovers of something unknown
        claim = VersionClaim.model_validate_json(data)
        return (now - claim.created_at).total_seconds() >= grace_seconds

    def _delete_version(
        self, version: int, record: VersionRecord, etag: str, *, actor: str
    ) -> bool:
        tombstone = record.model_copy(
            update={
                "status": "deleted",
                "status_changed_at": utc_now(),
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
