"""One object-store interface, two backends: a local directory (file://) and S3 via minio (s3://).

Keys are ``/``-separated relative paths. Both backends offer the two conditional writes the
registry needs: create-only (``if_none_match``) and compare-and-swap on an ETag (``if_match``).
On S3 these are the standard conditional-write headers (``If-None-Match: *`` and ``If-Match``),
which AWS S3 and MinIO evaluate atomically; see docs/adr/0003-registry-cas.md.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from trending.registry.objectstore.local import LocalObjectStore
from trending.registry.objectstore.protocol import (
    Debris,
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    etag_of,
)
from trending.registry.objectstore.s3 import S3ObjectStore, make_minio_client

__all__ = [
    "Debris",
    "LocalObjectStore",
    "ObjectNotFoundError",
    "ObjectStore",
    "PreconditionFailedError",
    "S3ObjectStore",
    "etag_of",
    "make_minio_client",
    "open_store",
]


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
