"""The model bundle: a directory with the model files and a manifest.

Serving loads only bundles; the registry stores only bundles. The manifest lists every file with
its SHA-256, so a bundle can be verified after any copy (upload, download, storage initializer).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

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
