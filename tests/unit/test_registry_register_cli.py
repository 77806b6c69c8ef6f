"""`trending registry register`: refuses a bundle without a model card, signs when it has a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.bundles import make_bundle
from typer.testing import CliRunner

from trending.modelling.bundle import (
    BundleSignatureError,
    BundleTrust,
    load_public_key,
    new_signing_key,
    read_manifest,
    verify_bundle,
    write_manifest,
)
from trending.registry import Registry

MODEL = "genre-classifier"


def carded(root: Path) -> Path:
    """A bundle with a model card sealed into its manifest, as the pipeline's card step leaves it."""
    bundle = make_bundle(root)
    (bundle / "card").mkdir()
    (bundle / "card" / "model_card.json").write_text(json.dumps({"model_family": "linear"}))
    write_manifest(bundle, read_manifest(bundle))
    return bundle


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    uri = (tmp_path / "reg").as_uri()
    monkeypatch.setenv("TRENDING_REGISTRY_URI", uri)
    monkeypatch.setenv("TRENDING_ACTOR", "cli-user")
    for name in ("TRENDING_BUNDLE_SIGNING_KEY", "TRENDING_BUNDLE_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    return Registry.from_uri(uri, MODEL)


def register(*args: str):
    from cli.registry import app

    return CliRunner().invoke(app, ["register", *args, "--reason", "test"])


def test_a_bundle_without_a_card_is_refused_unless_allowed(registry: Registry, tmp_path: Path):
    bare = make_bundle(tmp_path)
    refused = register(str(bare))
    assert refused.exit_code == 1
    assert "has no model card" in refused.output and "--allow-missing-card" in refused.output
    assert registry.list_versions() == []

    allowed = register(str(bare), "--allow-missing-card")
    assert allowed.exit_code == 0, allowed.output
    assert "without a model card" in allowed.output
    assert [v.version for v in registry.list_versions()] == [1]


def test_a_carded_bundle_is_signed_with_the_configured_key(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    private, public = new_signing_key()
    monkeypatch.setenv("TRENDING_BUNDLE_SIGNING_KEY", private)
    result = register(str(carded(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "signed" in result.output and "unsigned" not in result.output

    downloaded = registry.download(1, tmp_path / "down")
    verify_bundle(downloaded, trust=BundleTrust(public_key=load_public_key(public)))  # loaders
    other = new_signing_key()[1]
    with pytest.raises(BundleSignatureError):
        verify_bundle(downloaded, trust=BundleTrust(public_key=load_public_key(other)))


def test_pin_and_unpin_through_the_cli_and_unpinning_twice_says_why(
    registry: Registry, tmp_path: Path
):
    from cli.registry import app

    assert register(str(carded(tmp_path))).exit_code == 0
    runner = CliRunner()
    pinned = runner.invoke(app, ["pin", "1", "--reason", "paper"])
    assert pinned.exit_code == 0, pinned.output
    assert "version 1 pinned" in pinned.output
    assert registry.pinned() == [1]
    assert registry.events()[-1].actor == "cli-user"

    unpinned = runner.invoke(app, ["unpin", "1", "--reason", "done"])
    assert unpinned.exit_code == 0, unpinned.output
    assert "version 1 unpinned" in unpinned.output
    assert registry.pinned() == []

    again = runner.invoke(app, ["unpin", "1", "--reason", "done"])
    assert again.exit_code == 1
    assert "is not pinned" in again.output
