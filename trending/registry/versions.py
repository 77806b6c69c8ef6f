"""Immutable versions: claim a number, upload and verify, publish once; list, resolve, download."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from trending.modelling.bundle import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    BundleError,
    BundleSignatureError,
    UnsafeBundleError,
    read_manifest,
    sha256_file,
    verify_bundle,
)
from trending.registry.events import EventLog
from trending.registry.objectstore import ObjectNotFoundError, PreconditionFailedError
from trending.registry.records import (
    LATEST,
    PRODUCTION,
    AliasNotFoundError,
    IncompleteVersionError,
    Lineage,
    RegistryError,
    VersionClaim,
    VersionNotFoundError,
    VersionRecord,
    check_actor_reason,
    check_alias,
    utc_now,
)


class Versions(EventLog):
    """Registers, lists and downloads the immutable versions of one model."""

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
        check_actor_reason(actor, reason)
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
                registered_at=utc_now(),
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
            claim = VersionClaim(version=version, actor=actor, created_at=utc_now())
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
            registered_at=utc_now(),
            actor="registry",
            reason=why,
            status_changed_at=utc_now(),
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
        record = self.alias(check_alias(ref))
        if record is None or record.version is None:
            raise AliasNotFoundError(
                f"alias {ref!r} of {self.model_name} is not set; set it with "
                f"`trending registry promote <version> --alias {ref}`"
            )
        return self._published(record.version).version

    def download(self, ref: str | int, dest: Path) -> Path:
        """Download a version (by number or alias) into ``dest`` and verify every checksum.

        ``dest`` must be missing or empty; it appears only once the bundle is complete.

        Returns:
            ``dest``, now a verified bundle folder.

        Raises:
            VersionNotFoundError, AliasNotFoundError: ``ref`` names no complete version.
            IncompleteVersionError: A stored file is missing or corrupt, or the version is
                refused here (an old bundle format, unsigned, signed by another key): the
                message says which and what to do.
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
                raise IncompleteVersionError(self._refusal(record.version, exc, tmp)) from None
            if dest.exists():
                dest.rmdir()
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def _refusal(self, version: int, exc: Exception, folder: Path) -> str:
        """Why a stored version was not handed out, and what to do about it.

        An old format or a missing/foreign signature is not damage: the stored version is
        intact, it was registered before bundles were pickle-free or signed (or with another key),
        so the fix is to register it again, not to look for whoever changed the store.
        """
        where = f"version {version} of {self.model_name} in {self.store.uri}"
        reason = str(exc).replace(f"bundle {folder}", where).replace(str(folder), where)
        if isinstance(exc, UnsafeBundleError) and _format_of(folder) != FORMAT_VERSION:
            return (
                f"{reason}; then promote the new version (`trending registry promote <n>`). "
                f"The stored {where} is intact but will not be loaded by this code"
            )
        if isinstance(exc, BundleSignatureError) and "does not match its contents" not in reason:
            # "<where> is not signed, ... trusts key K ...: <advice for a bundle folder>".
            what = reason.split(": ", 1)[0]
            return (
                f"{what}. The stored version is intact: it was registered without the "
                "pipeline's TRENDING_BUNDLE_SIGNING_KEY (or with another key). Register its "
                "bundle again with the key set (the training pipeline's register step, or "
                "`trending registry register <bundle>`) and promote the new version; "
                "TRENDING_BUNDLE_PUBLIC_KEY decides which key this process trusts"
            )
        return (
            f"{where} is damaged ({reason}); the store was changed outside the registry — "
            "promote or load another version"
        )


def _format_of(bundle_dir: Path) -> object:
    """The ``format_version`` a downloaded manifest declares (None when unreadable)."""
    try:
        raw = json.loads((bundle_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return raw.get("format_version") if isinstance(raw, dict) else None
