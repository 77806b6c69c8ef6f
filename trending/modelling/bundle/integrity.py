"""Checking a bundle before any of it is parsed (format, signature, files, no pickles); signing it."""

from __future__ import annotations

import base64
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from trending.modelling.bundle.manifest import (
    RETRAIN_ADVICE,
    BundleError,
    BundleManifest,
    BundleSignature,
    UnsafeBundleError,
    payload_files,
    read_manifest,
    sha256_file,
    write_manifest_file,
)
from trending.modelling.bundle.signatures import (
    UNSIGNED_OK,
    BundleTrust,
    check_signature,
    key_id,
    signed_bytes,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# File types that are pickles (or carry them: torch's zip checkpoints). No bundle may hold one.
PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".ckpt", ".sav", ".npy_pickle"}
)
# Formats whose own header may begin with a pickle's first bytes by chance; their loaders never
# unpickle (safetensors; numpy with allow_pickle=False).
_OWN_HEADER_SUFFIXES = frozenset({".safetensors", ".npy", ".npz"})


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
    present = {p.relative_to(bundle_dir).as_posix() for p in payload_files(bundle_dir)}
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
                f"pickles (loading one can run code), so it is refused unopened: {RETRAIN_ADVICE}"
            )
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir} is incomplete: {rel} is missing")
        if sha256_file(path) != expected:
            raise BundleError(f"bundle {bundle_dir} is corrupt: checksum of {rel} does not match")
        if _looks_like_a_pickle(path):
            raise UnsafeBundleError(
                f"bundle {bundle_dir}: {rel} holds a pickle (or a torch checkpoint with one); "
                f"bundles never hold pickles (loading one can run code), so it is refused "
                f"unopened: {RETRAIN_ADVICE}"
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
    write_manifest_file(bundle_dir, signed)
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
