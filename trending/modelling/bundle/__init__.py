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

The package: ``manifest`` (schema, errors, read/write), ``signatures`` (keys, ``BundleTrust``),
``integrity`` (``verify_bundle``, ``sign_bundle``), ``download`` (``local_bundle``); and what
serving and export do with a bundle's model, imported by their own paths: ``inference`` (request
parsing, scores to genres), ``batching`` (``MicroBatcher``), ``quantization`` (the int8 check).
"""

from __future__ import annotations

from trending.modelling.bundle.download import local_bundle
from trending.modelling.bundle.integrity import (
    PICKLE_SUFFIXES,
    sign_bundle,
    sign_if_configured,
    verify_bundle,
)
from trending.modelling.bundle.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    BundleError,
    BundleManifest,
    BundleSignature,
    BundleSignatureError,
    UnsafeBundleError,
    read_manifest,
    reproducibility_hash,
    sha256_file,
    write_manifest,
)
from trending.modelling.bundle.signatures import (
    UNSIGNED_OK,
    BundleTrust,
    check_signature,
    key_id,
    load_public_key,
    load_signing_key,
    new_signing_key,
    signed_bytes,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "PICKLE_SUFFIXES",
    "UNSIGNED_OK",
    "BundleError",
    "BundleManifest",
    "BundleSignature",
    "BundleSignatureError",
    "BundleTrust",
    "UnsafeBundleError",
    "check_signature",
    "key_id",
    "load_public_key",
    "load_signing_key",
    "local_bundle",
    "new_signing_key",
    "read_manifest",
    "reproducibility_hash",
    "sha256_file",
    "sign_bundle",
    "sign_if_configured",
    "signed_bytes",
    "verify_bundle",
    "write_manifest",
]
