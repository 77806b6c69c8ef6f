"""The model registry against both backends: a local folder and S3 (moto_server on loopback)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trending.modelling.bundle import verify_bundle
from trending.registry import (
    AliasNotFoundError,
    EventKindError,
    IncompleteVersionError,
    Registry,
    RegistryError,
    RollbackUnavailableError,
    VersionNotFoundError,
)
from trending.registry.objectstore import (
    LocalObjectStore,
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    S3ObjectStore,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures import s3
from fixtures.bundles import make_bundle

MODEL = "genre-classifier"


@pytest.fixture(scope="module")
def moto() -> Iterator[s3.MotoServer]:
    server = s3.MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "registry")
    moto = request.getfixturevalue("moto")
    return S3ObjectStore(s3.new_bucket(moto.endpoint), "reg", client=s3.client(moto.endpoint))


@pytest.fixture
def registry(store: ObjectStore) -> Registry:
    return Registry(store, MODEL)


def _register(registry: Registry, root: Path, **kwargs: object) -> int:
    return registry.register_version(
        make_bundle(root, **kwargs), actor="ci", reason="test", run_record={"run_id": "r1"}
    )


# ---- object store: the CAS primitives the registry relies on -----------------------------------


def test_create_only_write_refuses_an_existing_key(store: ObjectStore) -> None:
    store.put_bytes("a/b.json", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailedError):
        store.put_bytes("a/b.json", b"two", if_none_match=True)
    assert store.get_bytes("a/b.json")[0] == b"one"


def test_compare_and_swap_needs_the_current_etag(store: ObjectStore) -> None:
    etag = store.put_bytes("k.json", b"v1")
    assert store.get_bytes("k.json") == (b"v1", etag)
    new_etag = store.put_bytes("k.json", b"v2", if_match=etag)
    with pytest.raises(PreconditionFailedError):
        store.put_bytes("k.json", b"v3", if_match=etag)  # stale
    with pytest.raises(PreconditionFailedError):
        store.put_bytes("missing.json", b"x", if_match=new_etag)
    assert store.get_bytes("k.json")[0] == b"v2"


def test_files_stream_both_ways_and_listing_is_by_folder(
    store: ObjectStore, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 300_000)
    store.put_file("v/1/src.bin", src)
    store.put_bytes("v/10/other", b"y")
    store.get_file("v/1/src.bin", tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == src.read_bytes()
    assert store.list("v/1") == ["v/1/src.bin"]
    assert store.list("v/") == ["v/1/src.bin", "v/10/other"]
    store.delete("v/1/src.bin")
    assert not store.exists("v/1/src.bin")
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("v/1/src.bin")
    with pytest.raises(ObjectNotFoundError):
        store.get_file("v/1/src.bin", tmp_path / "gone.bin")


# ---- versions -----------------------------------------------------------------------------------


def test_register_publishes_a_version_with_lineage(registry: Registry, tmp_path: Path) -> None:
    assert registry.list_versions() == []
    v1 = _register(registry, tmp_path)
    registry.promote(v1, actor="ci", reason="first")
    v2 = _register(registry, tmp_path, payload=b"better", drift=True)

    assert (v1, v2) == (1, 2)
    assert [r.version for r in registry.list_versions()] == [1, 2]
    first, second = registry.show(1), registry.show(2)
    assert first.lineage.parent_version is None
    assert second.lineage.parent_version == 1
    assert second.lineage.has_drift_detector and not first.lineage.has_drift_detector
    assert second.lineage.data_snapshot_id == "snap-0001"
    assert second.lineage.code_version == "abc1234"
    assert second.lineage.run_record == {"run_id": "r1"}
    assert set(second.files) == {"model.bin", "config/featurizer.json", "drift/detector.bin"}
    assert second.uri.endswith(f"models/{MODEL}/versions/2")
    assert second.metrics == {"micro_f1": 0.71}


def test_a_bundle_that_does_not_verify_is_refused_before_upload(
    registry: Registry, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path)
    (bundle / "model.bin").write_bytes(b"tampered")
    with pytest.raises(IncompleteVersionError, match="checksum"):
        registry.register_version(bundle, actor="ci", reason="test")
    assert registry.list_versions() == []
    assert registry.store.list(f"models/{MODEL}") == []


def test_download_by_number_and_alias_verifies_the_bundle(
    registry: Registry, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path, drift=True)
    version = registry.register_version(bundle, actor="ci", reason="test")
    registry.promote(version, actor="ci", reason="go")

    by_number = registry.download(version, tmp_path / "a")
    by_alias = registry.download("production", tmp_path / "b")
    for got in (by_number, by_alias):
        assert verify_bundle(got).files == verify_bundle(bundle).files
        assert (got / "drift" / "detector.bin").read_bytes() == (
            bundle / "drift" / "detector.bin"
        ).read_bytes()
    with pytest.raises(RegistryError, match="not empty"):
        registry.download(version, tmp_path / "a")


def test_download_refuses_a_version_damaged_in_the_store(
    registry: Registry, tmp_path: Path
) -> None:
    version = _register(registry, tmp_path)
    registry.store.put_bytes(f"models/{MODEL}/versions/{version}/model.bin", b"bit rot")
    with pytest.raises(IncompleteVersionError, match="damaged"):
        registry.download(version, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_resolve_numbers_aliases_and_latest(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(VersionNotFoundError, match="register a bundle first"):
        registry.resolve("latest")
    _register(registry, tmp_path)
    _register(registry, tmp_path)
    registry.promote(1, actor="ci", reason="go")
    assert registry.resolve(2) == registry.resolve("2") == registry.resolve("latest") == 2
    assert registry.resolve("production") == 1
    with pytest.raises(AliasNotFoundError, match="not set"):
        registry.resolve("canary")
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        registry.resolve(9)
    with pytest.raises(RegistryError, match="invalid alias"):
        registry.resolve("Bad Alias")


# ---- aliases ------------------------------------------------------------------------------------


def test_promote_and_rollback_follow_the_production_history(
    registry: Registry, tmp_path: Path
) -> None:
    for _ in range(3):
        _register(registry, tmp_path)
    registry.promote(1, actor="alice", reason="first")
    registry.promote(2, actor="bob", reason="better", evidence={"micro_f1": 0.8})
    record = registry.promote(3, actor="bob", reason="best")
    assert (record.version, record.previous) == (3, [1, 2])

    back = registry.rollback(actor="carol", reason="latency")
    assert (back.version, back.previous) == (2, [1])
    assert registry.alias("production").version == 2  # type: ignore[union-attr]
    assert registry.rollback(actor="carol", reason="again").version == 1
    with pytest.raises(RollbackUnavailableError, match="no earlier version"):
        registry.rollback(actor="carol", reason="once more")

    history = registry.alias("production").history  # type: ignore[union-attr]
    assert [(h.action, h.version, h.from_version) for h in history] == [
        ("promote", 1, None),
        ("promote", 2, 1),
        ("promote", 3, 2),
        ("rollback", 2, 3),
        ("rollback", 1, 2),
    ]
    assert history[1].evidence == {"micro_f1": 0.8}


def test_promote_refuses_unknown_versions_and_keeps_the_alias(
    registry: Registry, tmp_path: Path
) -> None:
    _register(registry, tmp_path)
    registry.promote(1, actor="ci", reason="go")
    with pytest.raises(VersionNotFoundError):
        registry.promote(7, actor="ci", reason="typo")
    with pytest.raises(AliasNotFoundError):
        registry.rollback(actor="ci", reason="x", alias="staging")
    assert registry.resolve("production") == 1
    # Promoting the current version changes nothing and logs nothing.
    registry.promote(1, actor="ci", reason="again")
    assert [e.kind for e in registry.events()].count("promote") == 1


def test_user_defined_alias_and_canary(registry: Registry, tmp_path: Path) -> None:
    for _ in range(3):
        _register(registry, tmp_path)
    registry.promote(1, actor="ci", reason="go")
    registry.promote(2, actor="ci", reason="qa", alias="staging")
    with pytest.raises(RegistryError, match="production already"):
        registry.set_canary(1, actor="ci", reason="no")
    registry.set_canary(3, actor="canary-controller", reason="new candidate")

    assert {n: a.version for n, a in registry.aliases().items()} == {
        "production": 1,
        "staging": 2,
        "canary": 3,
    }
    registry.clear_canary(actor="canary-controller", reason="error rate")
    registry.clear_canary(actor="canary-controller", reason="idempotent")
    assert registry.alias("canary") is None
    assert "canary" not in registry.aliases()
    kinds = [e.kind for e in registry.events() if e.kind.startswith("canary")]
    assert kinds == ["canary_start", "canary_stop"]


# ---- events -------------------------------------------------------------------------------------


def test_event_log_records_who_when_why_in_order(registry: Registry, tmp_path: Path) -> None:
    registry.log_event(
        "retrain_requested", actor="trigger", reason="drift", details={"p_value": 0.001}
    )
    version = _register(registry, tmp_path)
    registry.log_event(
        "gate_decision", actor="pipeline", reason="f1 ok", details={"passed": True}, version=1
    )
    registry.promote(version, actor="alice", reason="gate passed", evidence={"f1": 0.7})

    events = registry.events()
    assert [e.kind for e in events] == ["retrain_requested", "register", "gate_decision", "promote"]
    assert events[0].details == {"p_value": 0.001} and events[0].actor == "trigger"
    assert events[1].version == 1 and events[1].details["data_snapshot_id"] == "snap-0001"
    assert events[3].details == {
        "alias": "production",
        "from_version": None,
        "evidence": {"f1": 0.7},
    }
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert [e.kind for e in registry.events(limit=2)] == ["gate_decision", "promote"]


def test_log_event_refuses_reserved_and_malformed_kinds(registry: Registry) -> None:
    with pytest.raises(EventKindError, match="written by the registry"):
        registry.log_event("promote", actor="x", reason="y")
    with pytest.raises(EventKindError, match="invalid event kind"):
        registry.log_event("Retrain Now", actor="x", reason="y")
    with pytest.raises(RegistryError, match="reason is empty"):
        registry.log_event("retrain_started", actor="x", reason=" ")
    assert registry.events() == []


# ---- gc -----------------------------------------------------------------------------------------


def test_gc_keeps_aliases_pins_rollback_target_and_last_n(
    registry: Registry, tmp_path: Path
) -> None:
    for _ in range(7):
        _register(registry, tmp_path)
    registry.promote(2, actor="ci", reason="go")
    registry.promote(3, actor="ci", reason="go")  # 2 becomes the rollback target
    registry.set_canary(4, actor="ci", reason="try")
    registry.pin(1, actor="ci", reason="paper")

    assert registry.gc(keep_last=1, dry_run=True) == [5, 6]
    assert len(registry.list_versions()) == 7
    assert registry.gc(keep_last=1) == [5, 6]

    assert [r.version for r in registry.list_versions()] == [1, 2, 3, 4, 7]
    assert registry.show(5).status == "deleted"
    assert registry.store.list(f"models/{MODEL}/versions/5") == []
    with pytest.raises(VersionNotFoundError, match="removed by gc"):
        registry.download(5, tmp_path / "out")
    assert _register(registry, tmp_path) == 8  # numbers never repeat
    registry.unpin(1, actor="ci", reason="done")
    assert registry.gc(keep_last=1) == [1, 7]
    assert registry.events()[-1].kind == "gc"


def test_gc_removes_stale_partial_uploads_only_after_the_grace_period(
    registry: Registry, tmp_path: Path
) -> None:
    _register(registry, tmp_path)
    # An uploader that claimed number 2, uploaded one file and vanished.
    number = registry._claim_number("crashed-job")
    registry.store.put_bytes(f"models/{MODEL}/versions/{number}/model.bin", b"half")

    assert registry.gc(keep_last=5, grace_seconds=3600) == []
    assert registry.store.exists(f"models/{MODEL}/versions/{number}/model.bin")
    assert registry.gc(keep_last=5, grace_seconds=0) == [number]
    assert registry.store.list(f"models/{MODEL}/versions/{number}") == []
    assert registry.store.list(f"models/{MODEL}/claims") == []
    with pytest.raises(IncompleteVersionError, match="never finished"):
        registry.show(number)
    assert _register(registry, tmp_path) == number + 1


# ---- serving contract ---------------------------------------------------------------------------


@pytest.mark.integration  # moto_server
def test_download_by_alias_or_number_from_file_and_s3_roots(
    moto: s3.MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3.s3_env(moto.endpoint).items():
        monkeypatch.setenv(name, value)
    bucket = s3.new_bucket(moto.endpoint)
    roots = [(tmp_path / "reg").as_uri(), f"s3://{bucket}/registry"]
    for i, uri in enumerate(roots):
        registry = Registry.from_uri(uri, MODEL)
        registry.promote(_register(registry, tmp_path), actor="ci", reason="go")
        serving = Registry.from_uri(uri, MODEL)  # what a predictor does with --registry_uri
        got = serving.download("production", tmp_path / f"serve-{i}")
        assert verify_bundle(got).model_family == "linear"
        got = serving.download(1, tmp_path / f"serve-n-{i}")
        assert (got / "model.bin").read_bytes() == b"weights"


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_drives_the_registry_and_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.registry import app

    uri = (tmp_path / "reg").as_uri()
    monkeypatch.setenv("TRENDING_REGISTRY_URI", uri)
    monkeypatch.setenv("TRENDING_ACTOR", "cli-user")
    registry = Registry.from_uri(uri, MODEL)
    _register(registry, tmp_path)
    _register(registry, tmp_path)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    run("promote", "1", "--reason", "first")
    run("promote", "2", "-r", "better", "--evidence", '{"f1": 0.8}')
    assert "rolled back to version 1" in run("rollback", "--reason", "bad latency")
    run("set-canary", "2", "-r", "retry")
    run("clear-canary", "-r", "stop")
    assert "production" in run("list")
    assert '"data_snapshot_id": "snap-0001"' in run("show", "2")
    log = run("log", "--json")
    assert '"actor":"cli-user"' in log and '"kind":"rollback"' in log
    assert "removed: nothing" in run("gc")
    for command in (
        "list",
        "show",
        "promote",
        "rollback",
        "set-canary",
        "clear-canary",
        "log",
        "gc",
    ):
        assert "Usage" in run(command, "--help")

    failed = runner.invoke(app, ["promote", "9", "--reason", "typo"])
    assert failed.exit_code == 1
    assert "no version 9" in failed.output and "Traceback" not in failed.output
    failed = runner.invoke(app, ["rollback", "--reason", "x", "--alias", "nope"])
    assert failed.exit_code == 1 and "not set" in failed.output


def test_stage_new_version_bootstraps_production_then_stages_canaries(tmp_path):
    from fixtures.bundles import make_bundle

    from trending.registry import Registry, stage_new_version

    registry = Registry.from_uri((tmp_path / "reg").as_uri(), "genre-classifier")
    first = registry.register_version(make_bundle(tmp_path / "b1"), actor="t", reason="first")
    other = make_bundle(tmp_path / "b2", payload=b"other weights")
    second = registry.register_version(other, actor="t", reason="second")

    assert stage_new_version(registry, first, actor="t", reason="r") == "production"
    assert stage_new_version(registry, second, actor="t", reason="r") == "canary"
    assert registry.resolve("production") == first
    assert registry.resolve("canary") == second


def test_local_temp_files_go_with_their_settled_version_or_after_the_grace_period(
    tmp_path: Path,
) -> None:
    import os
    import time

    store = LocalObjectStore(tmp_path / "registry")
    registry = Registry(store, MODEL)
    uploading = registry._claim_number("still-running")  # a fresh claim: still uploading
    root = tmp_path / "registry" / "models" / MODEL
    orphan = root / "versions" / "7" / "config" / ".tmp-orphan"  # no claim, no record
    running = root / "versions" / str(uploading) / ".tmp-running"
    old_event = root / "events" / ".tmp-old"
    young_event = root / "events" / ".tmp-young"
    other_model = tmp_path / "registry" / "models" / "other" / "events" / ".tmp-old"
    for path in (orphan, running, old_event, young_event, other_model):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for path in (old_event, other_model):
        os.utime(path, (hour_ago, hour_ago))
    assert store.list("models") == [f"models/{MODEL}/claims/{uploading}.json"]  # debris hides

    preview = registry.collect(grace_seconds=60, dry_run=True)
    assert preview.debris == [
        f"temp file models/{MODEL}/events/.tmp-old",
        f"temp file models/{MODEL}/versions/7/config/.tmp-orphan",
    ]
    assert orphan.exists() and old_event.exists()

    assert registry.gc(grace_seconds=60) == [7]

    assert not orphan.exists() and not (root / "versions" / "7").exists()
    assert not old_event.exists()
    assert running.exists()  # its upload may still finish
    assert young_event.exists()  # may belong to a write still running
    assert other_model.exists()  # another model's registry is not this gc's business
    assert registry.events()[-1].details["debris"] == 2

    assert registry.gc(grace_seconds=0) == [uploading]  # now its claim is stale
    assert not running.exists()


@pytest.mark.integration  # moto_server
def test_s3_incomplete_uploads_are_aborted_once_their_version_is_settled(
    moto: s3.MotoServer,
) -> None:
    client = s3.client(moto.endpoint)
    bucket = s3.new_bucket(moto.endpoint)
    registry = Registry(S3ObjectStore(bucket, "reg", client=client), MODEL)
    version = registry._claim_number("killed-job")
    mine = f"reg/models/{MODEL}/versions/{version}/large.bin"
    client._create_multipart_upload(bucket, mine, {})
    client._create_multipart_upload(bucket, "reg/models/other/versions/1/large.bin", {})

    def pending() -> list[str]:
        return sorted(u.object_name for u in client._list_multipart_uploads(bucket).uploads)

    assert registry.collect(grace_seconds=3600).debris == []
    assert len(pending()) == 2  # its claim is fresh: the upload may still be running
    assert (
        registry.collect(grace_seconds=0, dry_run=True)
        .debris[0]
        .startswith(f"incomplete upload models/{MODEL}/versions/{version}/large.bin (")
    )
    assert len(pending()) == 2

    assert registry.gc(grace_seconds=0) == [version]

    assert pending() == ["reg/models/other/versions/1/large.bin"]
    assert registry.events()[-1].details["debris"] == 1


def test_registry_log_shows_markup_in_event_text_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.registry import app

    uri = (tmp_path / "reg").as_uri()
    monkeypatch.setenv("TRENDING_REGISTRY_URI", uri)
    registry = Registry.from_uri(uri, MODEL)
    # Alert labels flow into event details; "[/]" closes no tag and made rich raise MarkupError.
    registry.log_event(
        "retrain_requested",
        actor="[bold]trigger",
        reason="drift [/]",
        details={"labels": {"alertname": "[red]x[/red]"}},
    )

    result = CliRunner().invoke(app, ["log"], env={"COLUMNS": "250"})

    assert result.exit_code == 0, result.output
    assert "drift [/]" in result.output
    assert "[bold]trigger" in result.output
    assert "[red]x[/red]" in result.output
