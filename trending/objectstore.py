"""One object-store interface, two backends: a local directory (file://) and S3 via minio (s3://).

Keys are ``/``-separated relative paths. Both backends offer the two conditional writes the
registry needs: create-only (``if_none_match``) and compare-and-swap on an ETag (``if_match``).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse


class ObjectNotFoundError(KeyError):
    """The key does not exist."""


class PreconditionFailedError(RuntimeError):
    """A conditional write lost: the object exists already, or changed since it was read."""


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

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def list(self, prefix: str) -> list[str]:
        """All keys under ``prefix`` (recursive), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""
        ...


def etag_of(data: bytes) -> str:
    """The ETag the local backend gives an object: the MD5 hex of its bytes (as S3 does)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}: use a relative path without '..' or '//'")
    return key


class LocalObjectStore:
    """A directory as a bucket. Writes are atomic (temp file + rename); CAS holds a file lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
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
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return etag_of(data)

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        return data, etag_of(data)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3ObjectStore:
    """An S3 bucket (MinIO, SeaweedFS, Ceph, AWS) through the ``minio`` client.

    Credentials come only from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL`` — the variables a Kubernetes Secret is mounted as).
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: object | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client if client is not None else _minio_client_from_env()

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        from minio.error import S3Error

        headers = {}
        if if_none_match:
            headers["If-None-Match"] = "*"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        try:
            result = self.client.put_object(  # type: ignore[attr-defined]
                self.bucket, self._key(key), io.BytesIO(data), len(data), headers=headers or None
            )
        except S3Error as exc:
            if exc.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailedError(f"{key}: {exc.code}") from None
            raise
        return result.etag.strip('"')

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, self._key(key))  # type: ignore[attr-defined]
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise ObjectNotFoundError(key) from None
            raise
        try:
            data = response.read()
            etag = response.headers.get("ETag", "").strip('"')
        finally:
            response.close()
            response.release_conn()
        return data, etag

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, self._key(key))  # type: ignore[attr-defined]
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "ResourceNotFound"):
                return False
            raise
        return True

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix) if prefix else self.prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self.client.list_objects(self.bucket, prefix=full, recursive=True)  # type: ignore[attr-defined]
        return sorted(o.object_name[strip:] for o in objects)

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, self._key(key))  # type: ignore[attr-defined]


def _minio_client_from_env() -> object:
    from minio import Minio

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT")
    if not endpoint:
        raise ValueError("s3:// needs AWS_ENDPOINT_URL (e.g. http://minio:9000) in the environment")
    parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    access, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise ValueError("s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
    return Minio(
        parsed.netloc,
        access_key=access,
        secret_key=secret,
        secure=parsed.scheme == "https",
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )


def open_store(uri: str) -> ObjectStore:
    """Open the store a URI names: ``file:///dir`` or ``s3://bucket/prefix``."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return LocalObjectStore(Path(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{uri!r} names no bucket: use s3://bucket/prefix")
        return S3ObjectStore(parsed.netloc, parsed.path)
    raise ValueError(f"unsupported store URI {uri!r}: use file:///abs/dir or s3://bucket/prefix")
