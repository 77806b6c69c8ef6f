"""The bundle manifest: its schema and errors; reading it, and writing it with every file's checksum."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2
RETRAIN_ADVICE = (
    "re-train the model with this version of trending and register the new bundle "
    "(`trending pipeline run`, or `trending registry register <bundle>`)"
)


class BundleError(ValueError):
    """A bundle that cannot be read or does not verify."""


class UnsafeBundleError(BundleError):
    """A bundle that holds (or may hold) code: an old pickled format, a pickle, an unlisted file."""


class BundleSignatureError(BundleError):
    """A bundle whose manifest is unsigned, or signed by another key, where a signature is required."""


class BundleSignature(BaseModel):
    """An ed25519 signature over the rest of the manifest (files and their checksums included)."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ed25519"] = "ed25519"
    key_id: str = Field(description="First 16 hex digits of the SHA-256 of the raw public key.")
    value: str = Field(description="The signature, base64.")


class BundleManifest(BaseModel):
    """Everything needed to load, serve and audit a trained model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format_version: Literal[2] = FORMAT_VERSION
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
    signature: BundleSignature | None = Field(
        None, description="Set by the registering pipeline (sign_bundle); covers every other field."
    )

    @field_validator("files")
    @classmethod
    def _files_stay_inside_the_bundle(cls, value: dict[str, str]) -> dict[str, str]:
        for rel, digest in value.items():
            path = PurePosixPath(rel)
            if (
                not rel
                or "\\" in rel
                or path.is_absolute()
                or ".." in path.parts
                or path.as_posix() != rel
                or rel == MANIFEST_NAME
            ):
                raise ValueError(
                    f"file name {rel!r} is not a plain relative path inside the bundle"
                )
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"checksum of {rel!r} is not a lowercase hex SHA-256")
        return value

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


def payload_files(bundle_dir: Path) -> list[Path]:
    """Every file of the bundle but its manifest, sorted."""
    return sorted(p for p in bundle_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> BundleManifest:
    """Checksum every file in ``bundle_dir`` and write the manifest last; return it.

    The result is unsigned (a signature would no longer match): the registering pipeline signs
    the bundle it registers with ``sign_bundle``.
    """
    bundle_dir = Path(bundle_dir)
    files = {
        p.relative_to(bundle_dir).as_posix(): sha256_file(p) for p in payload_files(bundle_dir)
    }
    if not files:
        raise BundleError(f"{bundle_dir} holds no model files: save the model before the manifest")
    manifest = manifest.model_copy(update={"files": files, "signature": None})
    write_manifest_file(bundle_dir, manifest)
    return manifest


def reproducibility_hash(manifest: BundleManifest) -> str:
    """Hash of what training decided: model files, genres, thresholds, featurizer, params, metrics.

    Leaves out what differs between two identical trainings: the time stamp, the signature and
    the measured wall time. Same snapshot, seed and code version give the same hash for the
    deterministic families (xgboost, linear, prior); tests/model/test_reproducible_training.py.
    """
    metrics = {k: v for k, v in manifest.metrics.items() if k != "train_seconds"}
    decided = manifest.model_dump(mode="json", exclude={"created_at", "signature", "metrics"})
    payload = json.dumps({**decided, "metrics": metrics}, sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()


def write_manifest_file(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Replace ``manifest.json`` whole with ``manifest`` as given (a reader never sees half a one)."""
    path = bundle_dir / MANIFEST_NAME
    tmp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2))
    tmp.replace(path)


def read_manifest(bundle_dir: Path) -> BundleManifest:
    """Read and validate a bundle's manifest (without checking file contents).

    Raises:
        UnsafeBundleError: The bundle has an older format (format 1 held pickles): nothing of it
            is loaded, it has to be re-trained.
        BundleError: No manifest, or not a valid one.
    """
    path = Path(bundle_dir) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(
            f"{bundle_dir} is not a model bundle: {MANIFEST_NAME} is missing"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{path} is not a valid bundle manifest: not a JSON object")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise BundleError(
                f"{path} has bundle format {version}, newer than this code reads "
                f"({FORMAT_VERSION}): upgrade trending to load it"
            )
        raise UnsafeBundleError(
            f"{bundle_dir} is a bundle of format {version!r}, which held pickled model files "
            f"(joblib); format {FORMAT_VERSION} is the only one loaded, because loading a pickle "
            f"can run code. Nothing of it was opened: {RETRAIN_ADVICE}"
        )
    try:
        return BundleManifest.model_validate(raw)
    except ValueError as exc:
        raise BundleError(f"{path} is not a valid bundle manifest: {exc}") from None
