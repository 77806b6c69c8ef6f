"""Bundles load without executing code, and a configured public key admits only signed bundles.

Each pickle below would create a marker folder when unpickled (``test_the_payload_is_live``
shows it does); every refusal asserts that the marker never appears.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from fixtures.bundles import make_bundle

from trending.modelling.bundle import (
    MANIFEST_NAME,
    BundleError,
    BundleSignatureError,
    BundleTrust,
    UnsafeBundleError,
    load_public_key,
    load_signing_key,
    new_signing_key,
    read_manifest,
    sha256_file,
    sign_bundle,
    sign_if_configured,
    verify_bundle,
    write_manifest,
)
from trending.modelling.families import GenrePredictor, load_model
from trending.modelling.families.base import model_family
from trending.modelling.families.tfidf import OneVsRestLogistic
from trending.modelling.training import evaluate_bundle
from trending.monitoring.drift import add_drift_detector
from trending.registry import IncompleteVersionError, Registry
from trending.settings import Settings


class _MakesMarker:
    """Unpickling this calls ``os.mkdir(marker)``: the stand-in for ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-ran"


@pytest.fixture
def payload(marker: Path) -> bytes:
    return pickle.dumps(_MakesMarker(marker), protocol=4)


@pytest.fixture
def copy(trained_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(trained_bundle, target)
    return target


def _refused_everywhere(bundle: Path, match: str, marker: Path) -> None:
    """verify_bundle and the predictor's loader both refuse, and nothing ran."""
    with pytest.raises(UnsafeBundleError, match=match):
        verify_bundle(bundle)
    with pytest.raises(UnsafeBundleError, match=match):
        GenrePredictor.from_bundle(bundle)
    assert not marker.exists()


def test_the_payload_is_live(payload, tmp_path):
    # The refusals below mean something only because this payload does run when unpickled.
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_MakesMarker(live)))
    assert live.is_dir()
    joblib_marker = tmp_path / "via-joblib"
    (tmp_path / "stack.joblib").write_bytes(pickle.dumps(_MakesMarker(joblib_marker)))
    joblib.load(tmp_path / "stack.joblib")
    assert joblib_marker.is_dir()


def test_an_old_format_bundle_with_a_pickled_stack_is_refused_unopened(copy, payload, marker):
    # What a format-1 XGBoost bundle looked like, with stack.joblib carrying the payload.
    for path in (copy / "model").iterdir():
        if path.name != "booster.json":
            path.unlink()
    (copy / "model" / "stack.joblib").write_bytes(payload)
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    manifest["format_version"] = 1
    manifest["files"] = {
        rel: sha256_file(copy / rel) for rel in ("model/stack.joblib", "model/booster.json")
    }
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))

    _refused_everywhere(copy, r"format 1.*pickled.*re-train", marker)
    with pytest.raises(UnsafeBundleError, match="re-train"):
        load_model(copy, "xgboost")
    # Even called directly on the files, the family never opens the pickle.
    with pytest.raises(FileNotFoundError, match="re-train"):
        model_family("xgboost").load(copy / "model")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model/stack.joblib", "model/extra.pkl", "drift/detector.dill"])
def test_a_planted_unlisted_pickle_is_refused(copy, payload, marker, name):
    (copy / name).parent.mkdir(exist_ok=True)
    (copy / name).write_bytes(payload)
    _refused_everywhere(copy, f"does not list \\({name}\\)", marker)


def test_a_planted_pickle_with_a_rewritten_manifest_is_refused(copy, payload, marker):
    # Someone with write access to the store re-checksums the manifest (no key configured).
    (copy / "model" / "stack.joblib").write_bytes(payload)
    write_manifest(copy, read_manifest(copy))
    _refused_everywhere(copy, r"holds model/stack\.joblib, a pickle file type", marker)


@pytest.mark.parametrize("target", ["model/booster.json", "model/tfidf.json"])
def test_a_pickle_under_a_safe_name_with_a_rewritten_manifest_is_refused(
    copy, payload, marker, target
):
    (copy / target).write_bytes(payload)
    write_manifest(copy, read_manifest(copy))
    _refused_everywhere(copy, f"{target} holds a pickle", marker)


def test_a_torch_checkpoint_with_a_pickle_inside_is_refused(copy, payload, marker):
    # torch.save's format: a zip around data.pkl, whatever the file is called.
    with zipfile.ZipFile(copy / "model" / "weights.bin", "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    write_manifest(copy, read_manifest(copy))
    _refused_everywhere(copy, "torch checkpoint", marker)


def test_a_tampered_file_is_refused_and_would_not_run_anyway(copy, payload, marker):
    (copy / "model" / "logistic.npz").write_bytes(payload)
    with pytest.raises(BundleError, match=r"checksum of model/logistic\.npz does not match"):
        GenrePredictor.from_bundle(copy)
    # Past the checksum (no manifest check at all), numpy still refuses to unpickle it.
    with pytest.raises(ValueError, match="allow_pickle"):
        OneVsRestLogistic.load(copy / "model")
    assert not marker.exists()


def test_a_manifest_naming_files_outside_the_bundle_is_refused(copy):
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    manifest["files"]["../outside.json"] = "0" * 64
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a plain relative path"):
        read_manifest(copy)


def test_a_newer_format_says_to_upgrade(copy):
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    manifest["format_version"] = 3
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="upgrade trending"):
        read_manifest(copy)


# ---- signatures ------------------------------------------------------------------------------


@pytest.fixture
def keys() -> tuple[str, str]:
    return new_signing_key()


def _trust(public: str) -> BundleTrust:
    return BundleTrust(public_key=load_public_key(public))


def test_a_signed_bundle_loads_where_the_public_key_is_configured(copy, keys, monkeypatch):
    private, public = keys
    signed = sign_bundle(copy, load_signing_key(private))
    assert signed.signature is not None and read_manifest(copy).signature == signed.signature
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", public)
    predictor = GenrePredictor.from_bundle(copy)  # the predictor's loader reads the key itself
    assert predictor.manifest.signature == signed.signature
    assert predictor.scores(["A haunted house."]).shape == (1, 19)


def test_an_unsigned_bundle_is_refused_only_where_a_key_is_configured(tmp_path, keys, monkeypatch):
    bundle = make_bundle(tmp_path)
    assert verify_bundle(bundle).signature is None  # no key configured: unsigned is fine
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", keys[1])
    with pytest.raises(BundleSignatureError, match="is not signed"):
        verify_bundle(bundle)


def test_a_bundle_signed_by_another_key_is_refused(tmp_path, keys):
    bundle = make_bundle(tmp_path)
    sign_bundle(bundle, load_signing_key(new_signing_key()[0]))
    with pytest.raises(BundleSignatureError, match=r"signed by key [0-9a-f]{16}, but this process"):
        verify_bundle(bundle, trust=_trust(keys[1]))


def test_a_signed_manifest_changed_afterwards_is_refused(tmp_path, keys):
    private, public = keys
    bundle = make_bundle(tmp_path)
    sign_bundle(bundle, load_signing_key(private))
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["thresholds"] = [0.01, 0.01]
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleSignatureError, match="does not match its contents"):
        verify_bundle(bundle, trust=_trust(public))


def test_a_swapped_file_with_its_checksum_updated_breaks_the_signature(copy, keys, payload, marker):
    private, public = keys
    sign_bundle(copy, load_signing_key(private))
    (copy / "model" / "tfidf.json").write_bytes(payload)
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    manifest["files"]["model/tfidf.json"] = sha256_file(copy / "model" / "tfidf.json")
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))  # signature kept as it was
    with pytest.raises(BundleSignatureError, match="does not match its contents"):
        verify_bundle(copy, trust=_trust(public))
    assert not marker.exists()


def test_rewriting_a_manifest_drops_its_signature(tmp_path, keys):
    bundle = make_bundle(tmp_path)
    sign_bundle(bundle, load_signing_key(keys[0]))
    assert write_manifest(bundle, read_manifest(bundle)).signature is None
    assert read_manifest(bundle).signature is None


def test_keys_are_read_as_base64_or_pem_from_values_or_files(tmp_path, keys):
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "public.pem").write_bytes(public_pem)
    trust = BundleTrust.from_settings(
        Settings(bundle_signing_key=private_pem, bundle_public_key_file=tmp_path / "public.pem")
    )
    bundle = make_bundle(tmp_path)
    sign_bundle(bundle, trust.signing_key)
    verify_bundle(bundle, trust=trust)

    raw = base64.b64decode(keys[1])
    assert load_public_key(keys[1]).public_bytes(Encoding.Raw, PublicFormat.Raw) == raw
    with pytest.raises(BundleSignatureError, match="not an ed25519 key"):
        load_public_key("c2hvcnQ=")
    with pytest.raises(BundleSignatureError, match="not both"):
        BundleTrust.from_settings(
            Settings(bundle_public_key=keys[1], bundle_public_key_file=tmp_path / "public.pem")
        )
    with pytest.raises(BundleSignatureError, match="cannot be read"):
        BundleTrust.from_settings(Settings(bundle_signing_key_file=tmp_path / "missing"))


def test_the_register_step_signs_only_with_a_key(tmp_path, keys, monkeypatch):
    bundle = make_bundle(tmp_path)
    sign_if_configured(bundle)
    assert read_manifest(bundle).signature is None
    monkeypatch.setenv("TRENDING_BUNDLE_SIGNING_KEY", keys[0])
    sign_if_configured(bundle)
    verify_bundle(bundle, trust=_trust(keys[1]))


def test_pipeline_steps_before_registration_ignore_a_configured_public_key(
    copy, keys, titles, monkeypatch
):
    # A public key set pipeline-wide must not stop the steps that build the (unsigned) bundle.
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", keys[1])
    add_drift_detector(copy, titles.iloc[:60], n_components=4)
    manifest = evaluate_bundle(copy, titles.iloc[:40])
    assert "test" in manifest.metrics and any(f.startswith("drift/") for f in manifest.files)
    with pytest.raises(BundleSignatureError, match="is not signed"):
        GenrePredictor.from_bundle(copy)  # a loader still asks for the signature


def test_registry_downloads_refuse_unsigned_versions_where_a_key_is_configured(
    tmp_path, keys, monkeypatch
):
    private, public = keys
    registry = Registry.from_uri((tmp_path / "registry").as_uri(), "genre-classifier")
    unsigned = registry.register_version(make_bundle(tmp_path), actor="ci", reason="unsigned")
    signed_bundle = sign_if_configured(
        make_bundle(tmp_path), BundleTrust(load_signing_key(private))
    )
    signed = registry.register_version(signed_bundle, actor="ci", reason="signed")
    monkeypatch.setenv("TRENDING_BUNDLE_PUBLIC_KEY", public)
    got = registry.download(signed, tmp_path / "signed")
    assert read_manifest(got).signature is not None
    with pytest.raises(IncompleteVersionError, match="is not signed"):
        registry.download(unsigned, tmp_path / "unsigned")
    assert not (tmp_path / "unsigned").exists()


def test_loaded_arrays_never_allow_pickles(tmp_path, marker):
    # An object array (which numpy can only store by pickling) in place of a scorer's arrays.
    np.savez(
        tmp_path / "logistic.npz",
        weights=np.array([_MakesMarker(marker)], dtype=object),
        bias=np.zeros(1),
        constant=np.zeros(1),
    )
    (tmp_path / "logistic.json").write_text('{"c": 1, "balanced": true, "seed": 1, "genres": 1}')
    with pytest.raises(ValueError, match="allow_pickle"):
        OneVsRestLogistic.load(tmp_path)
    assert not marker.exists()
