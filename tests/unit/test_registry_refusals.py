"""A version the registry will not hand out says why and what to do, not "the store was changed".

An unsigned version (registered before signing was configured), one signed by another key and
an old-format version are intact in the store: their download errors point at re-registering;
only real damage (bytes changed in the store) is reported as damage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fixtures.bundles import make_bundle

from trending.modelling.bundle import (
    MANIFEST_NAME,
    BundleTrust,
    load_signing_key,
    new_signing_key,
    sign_if_configured,
)
from trending.registry import IncompleteVersionError, Registry

MODEL = "genre-classifier"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.from_uri((tmp_path / "registry").as_uri(), MODEL)


def test_an_unsigned_version_asks_to_be_registered_signed(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = registry.register_version(make_bundle(tmp_path), actor="ci", reason="unsigned")
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", new_signing_key()[1])
    with pytest.raises(IncompleteVersionError) as refused:
        registry.download(version, tmp_path / "out")
    message = str(refused.value)
    assert f"version {version} of {MODEL}" in message and "is not signed" in message
    assert "TRENDING_BUNDLE_SIGNING_KEY" in message and "promot" in message
    assert "damaged" not in message and "changed outside the registry" not in message
    assert ".download-" not in message  # names the version, not a temporary folder
    assert not (tmp_path / "out").exists()


def test_a_version_signed_by_another_key_names_both_keys_and_the_fix(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_private, _ = new_signing_key()
    bundle = sign_if_configured(make_bundle(tmp_path), BundleTrust(load_signing_key(old_private)))
    version = registry.register_version(bundle, actor="ci", reason="old key")
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", new_signing_key()[1])
    with pytest.raises(IncompleteVersionError) as refused:
        registry.download(version, tmp_path / "out")
    message = str(refused.value)
    assert "is signed by key" in message and "TRENDING_BUNDLE_PUBLIC_KEY" in message
    assert "Register its bundle again" in message and "damaged" not in message


def test_an_old_format_version_asks_for_a_retrained_registration(
    registry: Registry, tmp_path: Path
) -> None:
    version = registry.register_version(make_bundle(tmp_path), actor="ci", reason="seed")
    # What a format-1 registration left: its manifest (format 1) and the record's checksum of it.
    key = next(k for k in registry.store.list(f"models/{MODEL}") if k.endswith(MANIFEST_NAME))
    manifest = json.loads(registry.store.get_bytes(key)[0])
    manifest["format_version"] = 1
    old = json.dumps(manifest).encode()
    registry.store.put_bytes(key, old)
    record_key = registry._record_key(version)
    record = json.loads(registry.store.get_bytes(record_key)[0])
    record["manifest_sha256"] = hashlib.sha256(old).hexdigest()
    registry.store.put_bytes(record_key, json.dumps(record).encode())

    with pytest.raises(IncompleteVersionError) as refused:
        registry.download(version, tmp_path / "out")
    message = str(refused.value)
    assert f"version {version} of {MODEL}" in message and "format 1" in message
    assert "re-train" in message and "promote" in message and "intact" in message
    assert "damaged" not in message


def test_bytes_changed_in_the_store_are_still_reported_as_damage(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = new_signing_key()
    bundle = sign_if_configured(make_bundle(tmp_path), BundleTrust(load_signing_key(private)))
    version = registry.register_version(bundle, actor="ci", reason="signed")
    key = next(k for k in registry.store.list(f"models/{MODEL}") if k.endswith("model.bin"))
    registry.store.put_bytes(key, b"bit rot")
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", public)
    with pytest.raises(IncompleteVersionError, match=r"damaged .*changed outside the registry"):
        registry.download(version, tmp_path / "out")
