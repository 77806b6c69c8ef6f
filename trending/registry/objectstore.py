"""One object-store interface, two backends: a local directory (file://) and S3 via minio (s3://).

Keys are ``/``-separated relative paths. Both backends offer the two conditional writes the
registry needs: create-only (``if_none_match``) and compare-and-swap on an ETag (``if_match``).
On S3 these are the standard conditional-write headers (``If-None-Match: *`` and ``If-Match``),
which AWS S3 and MinIO evaluate atomically; see docs/adr/0003-registry-cas.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

_CHUNK = 1 << 20
# Error codes S3 servers answer a lost conditional write with (412 and 409).
_CONDITION_CODES = ("PreconditionFailed", "ConditionalRequestConflict")
_MISSING_CODES = ("NoSuchKey", "NoSuchBucket", "ResourceNotFound", "NoSuchObject")
# The local backend writes every object through a temp file with this prefix, then renames it.
_TEMP_PREFIX = ".tmp-"


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


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}: use a relative path without '..' or '//'")
    return key


def _check_prefix(prefix: str) -> str:
    """A folder prefix without its trailing slash ("" is the whole store)."""
    prefix = prefix.rstrip("/")
    return _check_key(prefix) if prefix else ""


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
                shutil.copyfileobj(src, dst, _CHUNK)
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
                shutil.copyfileobj(src, dst, _CHUNK)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the stored object, read back in chunks."""
        digest = hashlib.sha256()
        try:
            with open(self._path(key), "rb") as f:
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        """All keys under the folder ``prefix`` (recursive), sorted."""
        prefix = _check_prefix(prefix)
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
        prefix = _check_prefix(prefix)
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


class S3ObjectStore:
    """An S3 bucket (MinIO, SeaweedFS, Ceph, AWS) through the ``minio`` client.

    Credentials come only from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL`` — the variables a Kubernetes Secret is mounted as).
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any | None = None) -> None:
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
        """Write ``data`` at ``key`` and return its ETag; conditional when asked."""
        from minio.error import S3Error

        if not if_none_match and if_match is None:
            result = self.client.put_object(
                self.bucket, self._key(key), io.BytesIO(data), len(data)
            )
            return str(result.etag).strip('"')
        headers = {"Content-Type": "application/octet-stream"}
        if if_none_match:
            headers["If-None-Match"] = "*"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        try:
            # minio 7.2's public put_object has no request-header argument (``metadata`` keys
            # become x-amz-meta-*), so the conditional PUT goes through its single-request
            # _put_object, which sends the headers as given and signs them.
            result = self.client._put_object(self.bucket, self._key(key), data, headers)
        except S3Error as exc:
            lost = exc.code in _CONDITION_CODES or (
                if_match is not None and exc.code in ("NoSuchKey", "NoSuchObject")
            )
            if not lost:
                raise
            # A retried request can lose to its own first attempt; our payloads are unique, so
            # finding our exact bytes there means the write did happen.
            with suppress(ObjectNotFoundError):
                current, etag = self.get_bytes(key)
                if current == data:
                    return etag
            raise PreconditionFailedError(f"{key}: {exc.code}") from None
        return str(result.etag).strip('"')

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        """Return the object's bytes and ETag, or raise ObjectNotFoundError."""
        response = self._open(key)
        try:
            data = response.read()
            etag = response.headers.get("ETag", "").strip('"')
        finally:
            response.close()
            response.release_conn()
        return data, etag

    def _open(self, key: str) -> Any:
        from minio.error import S3Error

        try:
            return self.client.get_object(self.bucket, self._key(key))
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise ObjectNotFoundError(key) from None
            raise

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file, streaming it."""
        # fput_object streams the file and switches to multipart above the part size.
        self.client.fput_object(self.bucket, self._key(key), str(path))

    def get_file(self, key: str, path: Path) -> None:
        """Download an object into ``path``; the file appears only when complete."""
        from minio.error import S3Error

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # fget_object writes "<path>.<etag>.part.minio" and renames it when complete.
            self.client.fget_object(self.bucket, self._key(key), str(path))
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise ObjectNotFoundError(key) from None
            raise

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the stored object, read back in chunks."""
        digest = hashlib.sha256()
        response = self._open(key)
        try:
            for chunk in response.stream(_CHUNK):
                digest.update(chunk)
        finally:
            response.close()
            response.release_conn()
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, self._key(key))
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                return False
            raise
        return True

    def list(self, prefix: str) -> list[str]:
        """All keys under the folder ``prefix`` (recursive), sorted."""
        prefix = _check_prefix(prefix)
        # A trailing "/" gives folder semantics, like the local backend ("v1" must not match "v10").
        full = "/".join(p for p in (self.prefix, prefix) if p)
        full = f"{full}/" if full else ""
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self.client.list_objects(self.bucket, prefix=full, recursive=True)
        return sorted(o.object_name[strip:] for o in objects)

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""
        self.client.remove_object(self.bucket, self._key(key))

    def list_debris(self, prefix: str) -> list[Debris]:
        """Incomplete multipart uploads under ``prefix`` (a killed client never aborts them)."""
        prefix = _check_prefix(prefix)
        full = "/".join(p for p in (self.prefix, prefix) if p)
        full = f"{full}/" if full else ""
        strip = len(self.prefix) + 1 if self.prefix else 0
        return [
            Debris(
                key=upload.object_name[strip:],
                started_at=upload.initiated_time or datetime.fromtimestamp(0, UTC),
                kind="incomplete upload",
                upload_id=upload.upload_id,
            )
            for upload in self._multipart_uploads(full)
        ]

    def remove_debris(self, debris: Debris) -> None:
        """Abort an incomplete multipart upload, which frees its parts."""
        from minio.error import S3Error

        if debris.upload_id is None:
            raise ValueError(f"{debris.key}: no upload id, so it is not an incomplete upload")
        try:
            # minio 7.2 has no public AbortMultipartUpload; this is its single DELETE request.
            self.client._abort_multipart_upload(
                self.bucket, self._key(debris.key), debris.upload_id
            )
        except S3Error as exc:
            if exc.code != "NoSuchUpload":  # finished or aborted meanwhile
                raise

    def _multipart_uploads(self, prefix: str) -> list[Any]:
        """Every incomplete multipart upload under ``prefix``, following the listing's pages."""
        uploads: list[Any] = []
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            # minio 7.2 has no public ListMultipartUploads either; its result drops
            # NextUploadIdMarker, so the next page starts after the last upload seen.
            page = self.client._list_multipart_uploads(
                self.bucket,
                prefix=prefix,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
            )
            uploads.extend(page.uploads)
            if not page.is_truncated or not page.uploads:
                return uploads
            key_marker = page.uploads[-1].object_name
            upload_id_marker = page.uploads[-1].upload_id


def make_minio_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    *,
    region: str = "us-east-1",
    retries: int = 5,
    timeout_s: float = 300.0,
) -> Any:
    """Build a ``minio.Minio`` client for an endpoint URL such as ``http://minio:9000``.

    Args:
        endpoint_url: Scheme, host and port of the S3 endpoint; ``https`` when no scheme.
        access_key: The access key id.
        secret_key: The secret key.
        region: The bucket region (MinIO accepts any).
        retries: How often a request is retried on connection errors and 5xx answers.
        timeout_s: Connect and read timeout of each request.

    Returns:
        The client.
    """
    import certifi
    import urllib3
    from minio import Minio

    parsed = urlparse(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )
    return Minio(
        parsed.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parsed.scheme == "https",
        region=region,
        http_client=http,
    )


def _minio_client_from_env() -> Any:
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT")
    if not endpoint:
        raise ValueError("s3:// needs AWS_ENDPOINT_URL (e.g. http://minio:9000) in the environment")
    access, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise ValueError(
            "s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
        )
    return make_minio_client(
        endpoint, access, secret, region=os.environ.get("AWS_REGION", "us-east-1")
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
