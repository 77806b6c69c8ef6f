"""The model bundle: a directory with the model files and a manifest.

Serving loads only bundles; the registry stores only bundles. The manifest lists every file with
its SHA-256, so a bundle can be verified after any copy (upload, download, storage initializer).

A bundle never holds a pickle (format 2): model files are JSON, plain numpy arrays, XGBoost JSON
and safetensors, so loading one cannot run code. ``verify_bundle`` refuses a bundle of format 1
(joblib pickles), a file the manifest does not list, anything that looks like a pickle, and a
file whose checksum differs, before any model file is parsed. The registering pipeline signs the
manifest with an ed25519 key (``sign_bundle``); a process configured with the public key
(``TRENDING_BUNDLE_PUBLIC_KEY``) loads only bundles signed by it. See
docs/adr/0011-safe-signed-bundles.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from trending.settings import BundleSigningSettings

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2
# File types that are pickles (or carry them: torch's zip checkpoints). No bundle may hold one.
PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".ckpt", ".sav", ".npy_pickle"}
)
# Formats whose own header may begin with a pickle's first bytes by chance; their loaders never
# unpickle (safetensors; numpy with allow_pickle=False).
_OWN_HEADER_SUFFIXES = frozenset({".safetensors", ".npy", ".npz"})
# Domain separation: a manifest signature cannot be replayed as any other ed25519 signature.
_SIGNATURE_CONTEXT = b"trending-now bundle manifest v2\n"
_RETRAIN = (
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


def _payload_files(bundle_dir: Path) -> list[Path]:
    return sorted(p for p in bundle_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> BundleManifest:
    """Checksum every file in ``bundle_dir`` and write the manifest last; return it.

    The result is unsigned (a signature would no longer match): the registering pipeline signs
    the bundle it registers with ``sign_bundle``.
    """
    bundle_dir = Path(bundle_dir)
    files = {
        p.relative_to(bundle_dir).as_posix(): sha256_file(p) for p in _payload_files(bundle_dir)
    }
    if not files:
        raise BundleError(f"{bundle_dir} holds no model files: save the model before the manifest")
    manifest = manifest.model_copy(update={"files": files, "signature": None})
    _write_manifest_file(bundle_dir, manifest)
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


def _write_manifest_file(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Replace ``manifest.json`` whole (a reader never sees half a manifest)."""
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
            f"can run code. Nothing of it was opened: {_RETRAIN}"
        )
    try:
        return BundleManifest.model_validate(raw)
    except ValueError as exc:
        raise BundleError(f"{path} is not a valid bundle manifest: {exc}") from None


def verify_bundle(bundle_dir: Path, *, trust: BundleTrust | None = None) -> BundleManifest:
    """Check a bundle before any of its model files is parsed; return its manifest.

    In this order: the manifest has the current format; its signature, when ``trust`` has a
    public key; the folder holds exactly the files the manifest lists; no file is (or looks like)
    a pickle; every checksum matches. Only bytes are read, never parsed.

    Args:
        bundle_dir: The bundle folder.
        trust: The keys to check the signature with; default: ``BundleTrust.from_env()``
            (``TRENDING_BUNDLE_PUBLIC_KEY`` / ``_FILE``; no key configured: no signature check).

    Raises:
        UnsafeBundleError: Format 1, an unlisted file, or a pickle.
        BundleSignatureError: A public key is configured and the manifest is unsigned or its
            signature does not verify.
        BundleError: A listed file is missing or its checksum differs; a bad manifest.
    """
    bundle_dir = Path(bundle_dir)
    trust = BundleTrust.from_env() if trust is None else trust
    manifest = read_manifest(bundle_dir)
    if trust.public_key is not None:
        check_signature(manifest, trust.public_key, where=str(bundle_dir))
    present = {p.relative_to(bundle_dir).as_posix() for p in _payload_files(bundle_dir)}
    unlisted = sorted(present - set(manifest.files))
    if unlisted:
        raise UnsafeBundleError(
            f"bundle {bundle_dir} holds files its manifest does not list ({', '.join(unlisted[:5])}"
            f"{', ...' if len(unlisted) > 5 else ''}): a bundle is exactly what its manifest "
            "lists, so it is refused; remove them, or rebuild the bundle"
        )
    for rel, expected in manifest.files.items():
        path = bundle_dir / rel
        if PurePosixPath(rel).suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeBundleError(
                f"bundle {bundle_dir} holds {rel}, a pickle file type; bundles never hold "
                f"pickles (loading one can run code), so it is refused unopened: {_RETRAIN}"
            )
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir} is incomplete: {rel} is missing")
        if sha256_file(path) != expected:
            raise BundleError(f"bundle {bundle_dir} is corrupt: checksum of {rel} does not match")
        if _looks_like_a_pickle(path):
            raise UnsafeBundleError(
                f"bundle {bundle_dir}: {rel} holds a pickle (or a torch checkpoint with one); "
                f"bundles never hold pickles (loading one can run code), so it is refused "
                f"unopened: {_RETRAIN}"
            )
    return manifest


def _looks_like_a_pickle(path: Path) -> bool:
    """Whether a file starts like a pickle (protocol 2-5) or is a zip with a pickle inside."""
    if path.suffix.lower() in _OWN_HEADER_SUFFIXES:
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head == b"PK\x03\x04":  # torch.save writes a zip around data.pkl
        try:
            with zipfile.ZipFile(path) as archive:
                return any(
                    PurePosixPath(n).suffix.lower() in PICKLE_SUFFIXES for n in archive.namelist()
                )
        except zipfile.BadZipFile:
            return False
    return False


# ---- signatures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleTrust:
    """The keys a process signs bundles with and checks them against; both may be absent.

    ``signing_key`` belongs only to the registering pipeline step; ``public_key`` to every
    loader that should refuse unsigned bundles (predictor, drift service).
    """

    signing_key: Ed25519PrivateKey | None = None
    public_key: Ed25519PublicKey | None = None

    @classmethod
    def from_settings(cls, settings: BundleSigningSettings) -> BundleTrust:
        """Keys from the ``bundle_*`` settings (values, or files holding them)."""
        signing = _setting_or_file(
            settings.bundle_signing_key.get_secret_value() if settings.bundle_signing_key else None,
            settings.bundle_signing_key_file,
            "TRENDING_BUNDLE_SIGNING_KEY",
        )
        public = _setting_or_file(
            settings.bundle_public_key,
            settings.bundle_public_key_file,
            "TRENDING_BUNDLE_PUBLIC_KEY",
        )
        return cls(
            signing_key=None if signing is None else load_signing_key(signing),
            public_key=None if public is None else load_public_key(public),
        )

    @classmethod
    def from_env(cls) -> BundleTrust:
        """Keys from ``TRENDING_BUNDLE_{SIGNING,PUBLIC}_KEY[_FILE]`` (read at call time)."""
        from trending.settings import BundleSigningSettings

        return cls.from_settings(BundleSigningSettings())


#: Check no signature: for the pipeline's own steps on bundles not registered (so not signed) yet.
UNSIGNED_OK = BundleTrust()


def _setting_or_file(value: str | None, path: Path | None, name: str) -> str | None:
    if value and path:
        raise BundleSignatureError(f"set {name} or {name}_FILE, not both")
    if path is None:
        return value or None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise BundleSignatureError(
            f"{name}_FILE={path} cannot be read ({exc.strerror}): mount the key file there"
        ) from None


def _key_bytes(text: str, name: str) -> bytes | None:
    """Raw 32 key bytes from base64 text, or None when ``text`` is PEM."""
    if text.lstrip().startswith("-----BEGIN"):
        return None
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BundleSignatureError(
            f"{name} is not an ed25519 key: give PEM, or the base64 of its 32 raw bytes "
            "(docs/models.md, 'Bundle signing', shows how to make a key pair)"
        )
    return raw


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """An ed25519 private key from PEM (PKCS#8) or base64 of its 32 raw bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    raw = _key_bytes(text, "TRENDING_BUNDLE_SIGNING_KEY")
    if raw is not None:
        return Ed25519PrivateKey.from_private_bytes(raw)
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise BundleSignatureError(
            f"TRENDING_BUNDLE_SIGNING_KEY is not a readable unencrypted PEM key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleSignatureError(
            f"TRENDING_BUNDLE_SIGNING_KEY is a {type(key).__name__}, not an ed25519 key"
        )
    return key


def load_public_key(text: str) -> Ed25519PublicKey:
    """An ed25519 public key from PEM (SubjectPublicKeyInfo) or base64 of its 32 raw bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    raw = _key_bytes(text, "TRENDING_BUNDLE_PUBLIC_KEY")
    if raw is not None:
        return Ed25519PublicKey.from_public_bytes(raw)
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise BundleSignatureError(
            f"TRENDING_BUNDLE_PUBLIC_KEY is not a readable PEM key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleSignatureError(
            f"TRENDING_BUNDLE_PUBLIC_KEY is a {type(key).__name__}, not an ed25519 key"
        )
    return key


def new_signing_key() -> tuple[str, str]:
    """A fresh key pair as base64 text: (private key for the pipeline, public key for loaders)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key (names the key in manifests and errors)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(manifest: BundleManifest) -> bytes:
    """What a signature covers: every manifest field but the signature, as canonical JSON."""
    body = manifest.model_dump(mode="json", exclude={"signature"})
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return _SIGNATURE_CONTEXT + canonical.encode()


def check_signature(manifest: BundleManifest, public_key: Ed25519PublicKey, *, where: str) -> None:
    """Raise ``BundleSignatureError`` unless ``manifest`` is signed by ``public_key``'s owner."""
    from cryptography.exceptions import InvalidSignature

    expected_id = key_id(public_key)
    signature = manifest.signature
    if signature is None:
        raise BundleSignatureError(
            f"bundle {where} is not signed, and this process loads only bundles signed by key "
            f"{expected_id} (TRENDING_BUNDLE_PUBLIC_KEY is set): register it through the "
            "training pipeline, whose register step signs it (or unset the public key to load "
            "unsigned bundles)"
        )
    if signature.key_id != expected_id:
        raise BundleSignatureError(
            f"bundle {where} is signed by key {signature.key_id}, but this process trusts key "
            f"{expected_id}: check TRENDING_BUNDLE_PUBLIC_KEY, or register the bundle again with "
            "the pipeline's current key"
        )
    try:
        public_key.verify(base64.b64decode(signature.value, validate=True), signed_bytes(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleSignatureError(
            f"bundle {where}: the manifest signature does not match its contents — the manifest "
            "(a checksum, a threshold, ...) was changed after the pipeline signed it; the "
            "bundle is refused, register a freshly trained bundle"
        ) from None


def sign_bundle(bundle_dir: Path, signing_key: Ed25519PrivateKey) -> BundleManifest:
    """Verify a bundle, then sign its manifest in place (what the registering pipeline does).

    The signature covers every manifest field, so every file's checksum too. Any later
    ``write_manifest`` (a new metric, a card) drops it: sign right before registering.

    Returns:
        The signed manifest.
    """
    bundle_dir = Path(bundle_dir)
    manifest = verify_bundle(bundle_dir, trust=UNSIGNED_OK).model_copy(update={"signature": None})
    public_key = signing_key.public_key()
    value = signing_key.sign(signed_bytes(manifest))
    signed = manifest.model_copy(
        update={
            "signature": BundleSignature(
                key_id=key_id(public_key), value=base64.b64encode(value).decode()
            )
        }
    )
    _write_manifest_file(bundle_dir, signed)
    # What a loader will see: the manifest as read back from the file verifies.
    return verify_bundle(bundle_dir, trust=BundleTrust(public_key=public_key))


def sign_if_configured(bundle_dir: Path, trust: BundleTrust | None = None) -> Path:
    """Sign ``bundle_dir`` when a signing key is configured (default: from the environment).

    The registering step calls this right before ``register_version``; without a key the
    bundle is registered unsigned (loaders with a public key will refuse it).

    Returns:
        ``bundle_dir``.
    """
    trust = BundleTrust.from_env() if trust is None else trust
    if trust.signing_key is not None:
        sign_bundle(bundle_dir, trust.signing_key)
    return Path(bundle_dir)


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
