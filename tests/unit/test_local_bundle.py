"""``local_bundle``: the predictor's ``--storage_uri`` (file://, a folder, or s3:// on a real S3)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trending.modelling.bundle import BundleError, local_bundle, read_manifest
from trending.registry.objectstore import S3ObjectStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures import s3
from fixtures.bundles import make_bundle

pytestmark = pytest.mark.integration  # moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[s3.MotoServer]:
    server = s3.MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bundle(moto, tmp_path, monkeypatch) -> tuple[str, Path, S3ObjectStore]:
    """A bundle uploaded file by file under s3://<bucket>/bundles/b1, and its local original."""
    for name, value in s3.s3_env(moto.endpoint).items():
        monkeypatch.setenv(name, value)
    bucket = s3.new_bucket(moto.endpoint)
    store = S3ObjectStore(bucket, "bundles/b1", client=s3.client(moto.endpoint))
    original = make_bundle(tmp_path / "src", drift=True)
    for path in original.rglob("*"):
        if path.is_file():
            store.put_file(path.relative_to(original).as_posix(), path)
    return f"s3://{bucket}/bundles/b1", original, store


def test_s3_bundle_is_downloaded_verified_and_then_served_from_the_cache(s3_bundle, tmp_path):
    uri, original, store = s3_bundle
    local = local_bundle(uri, tmp_path / "cache")
    files = sorted(read_manifest(original).files)
    for rel in files:
        assert (local / rel).read_bytes() == (original / rel).read_bytes()

    store.delete(files[0])  # a second load must not need the store
    assert local_bundle(uri, tmp_path / "cache") == local


def test_s3_bundle_with_a_changed_file_is_refused_and_leaves_nothing_behind(s3_bundle, tmp_path):
    uri, original, store = s3_bundle
    rel = sorted(read_manifest(original).files)[0]
    store.put_bytes(rel, b"tampered")
    with pytest.raises(BundleError):
        local_bundle(uri, tmp_path / "cache")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_s3_uri_without_a_manifest_says_where_to_point(moto, tmp_path, monkeypatch):
    for name, value in s3.s3_env(moto.endpoint).items():
        monkeypatch.setenv(name, value)
    bucket = s3.new_bucket(moto.endpoint)
    with pytest.raises(FileNotFoundError, match="point the storage URI at a bundle folder"):
        local_bundle(f"s3://{bucket}/nothing-here", tmp_path / "cache")


def test_local_uris_are_used_in_place_and_other_schemes_are_refused(tmp_path):
    bundle = make_bundle(tmp_path)
    assert local_bundle(bundle.as_uri(), tmp_path / "cache") == bundle
    assert local_bundle(str(bundle), tmp_path / "cache") == bundle
    with pytest.raises(ValueError, match="use file:///path, s3://bucket/prefix"):
        local_bundle("https://example.com/bundle", tmp_path / "cache")
