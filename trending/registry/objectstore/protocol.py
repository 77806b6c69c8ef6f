"""The object-store interface both backends implement: the protocol, its errors, key checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

# Streamed reads and writes move this many bytes at a time.
CHUNK_BYTES = 1 << 20


class ObjectNotFoundError(KeyError):
    """The key does not exist."""


class PreconditionFailedError(RuntimeError):
    """A conditional write lost: the object exists already, or changed since it was read."""


@dataclass(frozen=True)
class Debris:
    """A leftover of a write that never finished: a temp file, or an incomplete S3 upload.

    Attributes:
        key: The key the upload was for; a temp file's own key (it sits beside its target).
        started_at: When the write began (UTC): the upload's start, the temp file's last write.
        kind: ``temp file`` or ``incomplete upload``.
        upload_id: The S3 upload to abort.
    """

    key: str
    started_at: datetime
    kind: str
    upload_id: str | None = None

    def describe(self) -> str:
        """One line for logs and the CLI."""
        upload = f" ({self.upload_id})" if self.upload_id else ""
        return f"{self.kind} {self.key}{upload}"


class ObjectStore(Protocol):
    """What the registry and the snapshot store need from a bucket."""

    uri: str

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        """Write ``data`` at ``key`` and return its ETag; conditional when asked."""
        ...

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        """Return the object's bytes and ETag, or raise ObjectNotFoundError."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file, streaming it (large model files)."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Download an object into ``path`` (streaming; the file appears only when complete)."""
        ...

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the stored object, read back from the store in chunks."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def list(self, prefix: str) -> list[str]:
        """All keys under the folder ``prefix`` (recursive), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""
        ...

    def list_debris(self, prefix: str) -> list[Debris]:
        """What interrupted writes left under ``prefix``, which no ``list`` shows.

        Local: temp files of writes killed before their rename. S3: incomplete multipart
        uploads (their parts are stored, and billed, until the upload is aborted).
        """
        ...

    def remove_debris(self, debris: Debris) -> None:
        """Remove one leftover that ``list_debris`` returned (gone already is fine)."""
        ...


def etag_of(data: bytes) -> str:
    """The ETag the local backend gives an object: the MD5 hex of its bytes (as S3 does)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def check_key(key: str) -> str:
    """Return ``key`` when it is a plain relative path; raise ``ValueError`` when it is not."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}: use a relative path without '..' or '//'")
    return key


def check_prefix(prefix: str) -> str:
    """A folder prefix without its trailing slash ("" is the whole store)."""
    prefix = prefix.rstrip("/")
    return check_key(prefix) if prefix else ""
