"""The S3 backend through the ``minio`` client (s3://), with conditional writes and debris listing."""

from __future__ import annotations

import hashlib
import io
import os
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trending.registry.objectstore.protocol import (
    CHUNK_BYTES,
    Debris,
    ObjectNotFoundError,
    PreconditionFailedError,
    check_key,
    check_prefix,
)

# Error codes S3 servers answer a lost conditional write with (412 and 409).
_CONDITION_CODES = ("PreconditionFailed", "ConditionalRequestConflict")
_MISSING_CODES = ("NoSuchKey", "NoSuchBucket", "ResourceNotFound", "NoSuchObject")


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
        check_key(key)
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
            for chunk in response.stream(CHUNK_BYTES):
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
        prefix = check_prefix(prefix)
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
        prefix = check_prefix(prefix)
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
