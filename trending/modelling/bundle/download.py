"""A local, verified copy of a bundle named by a folder path, a file:// or an s3:// URI."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from trending.modelling.bundle.integrity import verify_bundle
from trending.modelling.bundle.manifest import MANIFEST_NAME, read_manifest


def local_bundle(storage_uri: str, cache_dir: Path) -> Path:
    """A local copy of the bundle at ``storage_uri`` (downloads are verified).

    A ``file://`` URI or a plain path is used in place; an ``s3://bucket/prefix`` bundle is
    downloaded (credentials from the environment, as for the registry) into ``cache_dir``.

    Raises:
        FileNotFoundError: No bundle manifest at the URI.
        BundleError: A file is missing or its checksum differs.
    """
    parsed = urlparse(storage_uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else storage_uri)  # verified when loaded
    if parsed.scheme != "s3":
        raise ValueError(
            f"storage URI {storage_uri!r}: use file:///path, s3://bucket/prefix or a folder path"
        )
    from trending.registry.objectstore import ObjectNotFoundError, open_store

    store = open_store(storage_uri)
    dest = Path(cache_dir) / f"{parsed.netloc}{parsed.path}".replace("/", "_")
    if dest.is_dir():
        verify_bundle(dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.download-"))
    try:
        try:
            store.get_file(MANIFEST_NAME, tmp / MANIFEST_NAME)
        except ObjectNotFoundError:
            raise FileNotFoundError(
                f"no {MANIFEST_NAME} under {storage_uri}: point the storage URI at a bundle folder"
            ) from None
        for rel in read_manifest(tmp).files:
            store.get_file(rel, tmp / rel)
        verify_bundle(tmp)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
