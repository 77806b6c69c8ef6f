"""Bundle signing keys and manifest signatures: ``BundleTrust``, key loading, ``check_signature``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trending.modelling.bundle.manifest import BundleManifest, BundleSignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from trending.settings import BundleSigningSettings

# Domain separation: a manifest signature cannot be replayed as any other ed25519 signature.
_SIGNATURE_CONTEXT = b"trending-now bundle manifest v2\n"


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
