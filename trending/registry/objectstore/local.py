"""The local backend: a directory as a bucket, atomic writes, CAS under a file lock (file://)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from trending.registry.objectstore.protocol import (
    CHUNK_BYTES,
    Debris,
    ObjectNotFoundError,
    PreconditionFailedError,
    check_key,
    check_prefix,
    etag_of,
)

# The local backend writes every object through a temp file with this prefix, then renames it.
_TEMP_PREFIX = ".tmp-"


class LocalObjectStore:
    """A directory as a bucket. Writes are atomic (temp file + rename); CAS holds a file lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _temp_beside(self, path: Path) -> Iterator[Path]:
        """A temp file in the target's folder, so the final rename is atomic; removed on error."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        os.close(fd)
        try:
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        """Write ``data`` at ``key`` and return its ETag; conditional when asked."""
        path = self._path(key)
        with self._temp_beside(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if if_none_match or if_match is not None:
                with self._locked():
                    if if_none_match and path.exists():
                        raise PreconditionFailedError(f"{key} exists already")
                    if if_match is not None:
                        current = etag_of(path.read_bytes()) if path.exists() else None
                        if current != if_match:
                            raise PreconditionFailedError(f"{key} changed since it was read")
                    os.replace(tmp, path)
            else:
                os.replace(tmp, path)
        return etag_of(data)

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        """Return the object's bytes and ETag, or raise ObjectNotFoundError."""
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFoundError(key) from None
        return data, etag_of(data)

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file, streaming it."""
        target = self._path(key)
        with self._temp_beside(target) as tmp:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)

    def get_file(self, key: str, path: Path) -> None:
        """Download an object into ``path``; the file appears only when complete."""
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFoundError(key)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the stored object, read back in chunks."""
        digest = hashlib.sha256()
        try:
            with open(self._path(key), "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        """All keys under the folder ``prefix`` (recursive), sorted."""
        prefix = check_prefix(prefix)
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune_empty_folders(path.parent)

    def _prune_empty_folders(self, folder: Path) -> None:
        """Remove ``folder`` and its parents while empty, as S3 has no folders to leave behind."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def list_debris(self, prefix: str) -> list[Debris]:
        """Temp files of writes killed before their rename (``list`` skips dot-files)."""
        prefix = check_prefix(prefix)
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for path in sorted(base.rglob(f"{_TEMP_PREFIX}*")):
            with suppress(FileNotFoundError):  # its write finished meanwhile
                if path.is_file():
                    found.append(
                        Debris(
                            key=path.relative_to(self.root).as_posix(),
                            started_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
                            kind="temp file",
                        )
                    )
        return found

    def remove_debris(self, debris: Debris) -> None:
        """Remove a temp file, and the folders it leaves empty."""
        path = self._path(debris.key)
        if not path.name.startswith(_TEMP_PREFIX):
            raise ValueError(f"{debris.key} is not a temp file; refusing to remove it as debris")
        path.unlink(missing_ok=True)
        self._prune_empty_folders(path.parent)
