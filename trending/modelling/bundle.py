"""The model bundle: a directory with the model files and a manifest.

Serving loads only bundles; the registry stores only bundles. The manifest lists every file with
its SHA-256, so a bundle can be verified after any copy (upload, download, storage initializer).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


class BundleError(ValueError):
    """A bundle that cannot be read or does not verify."""


class BundleManifest(BaseModel):
    """Everything needed to load, serve and audit a trained model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format_version: Literal[1] = FORMAT_VERSION
    model_family: Literal["xgboost", "bert", "linear", "prior"]
    genres: list[str] = Field(min_length=1)
    thresholds: list[float]
    featurizer: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_snapshot_id: str | None = None
    code_version: str = "unknown"
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, value: list[float]) -> list[float]:
        bad = [t for t in value if not 0.0 <= t <= 1.0]
        if bad:
            raise ValueError(f"thresholds must lie in [0, 1], got {bad}")
        return value

    @model_validator(mode="after")
    def _one_threshold_per_genre(self) -> BundleManifest:
        if len(self.thresholds) != len(self.genres):
            raise ValueError(
                f"{len(self.thresholds)} thresholds for {len(self.genres)} genres: need one per genre"
            )
        return self


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _payload_files(bundle_dir: Path) -> list[Path]:
    return sorted(p for p in bundle_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> BundleManifest:
    """Checksum every file in ``bundle_dir`` and write the manifest last; return it."""
    bundle_dir = Path(bundle_dir)
    files = {
        p.relative_to(bundle_dir).as_posix(): sha256_file(p) for p in _payload_files(bundle_dir)
    }
    if not files:
        raise BundleError(f"{bundle_dir} holds no model files: save the model before the manifest")
    manifest = manifest.model_copy(update={"files": files})
    (bundle_dir / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2))
    return manifest


def read_manifest(bundle_dir: Path) -> BundleManifest:
    """Read and validate a bundle's manifest (without checking file contents)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(
            f"{bundle_dir} is not a model bundle: {MANIFEST_NAME} is missing"
        ) from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    try:
        return BundleManifest.model_validate(raw)
    except ValueError as exc:
        raise BundleError(f"{path} is not a valid bundle manifest: {exc}") from None


def verify_bundle(bundle_dir: Path) -> BundleManifest:
    """Read the manifest and check that every listed file is present with its checksum."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    for rel, expected in manifest.files.items():
        path = bundle_dir / rel
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir} is incomplete: {rel} is missing")
        if sha256_file(path) != expected:
            raise BundleError(f"bundle {bundle_dir} is corrupt: checksum of {rel} does not match")
    return manifest


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
