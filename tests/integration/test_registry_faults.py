"""Registry fault injection: servers and processes die, uploads corrupt, writers race.

After each fault the registry must be consistent: only complete versions are listed, aliases name
only complete versions, and the event log records nothing that did not happen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from trending.modelling.bundle import verify_bundle
from trending.registry import (
    AliasConflictError,
    IncompleteVersionError,
    Registry,
    VersionNotFoundError,
)
from trending.registry.objectstore import LocalObjectStore, ObjectStore, S3ObjectStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures import s3
from fixtures.bundles import make_bundle

pytestmark = pytest.mark.integration

MODEL = "genre-classifier"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def moto() -> Any:
    server = s3.MotoServer().start()
    yield server
    server.stop()


class Backend:
    """One registry location that several clients (threads, processes) can open."""

    def __init__(self, kind: str, tmp_path: Path, moto: s3.MotoServer | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.moto = moto
        if kind == "local":
            self.uri = (tmp_path / "registry").as_uri()
        else:
            assert moto is not None
            self.bucket = s3.new_bucket(moto.endpoint)
            self.uri = f"s3://{self.bucket}/reg"

    def store(self, endpoint: str | None = None, retries: int = 2) -> ObjectStore:
        if self.kind == "local":
            return LocalObjectStore(self.tmp_path / "registry")
        assert self.moto is not None
        client = s3.client(endpoint or self.moto.endpoint, retries=retries)
        return S3ObjectStore(self.bucket, "reg", client=client)

    def registry(self) -> Registry:
        return Registry(self.store(), MODEL)

    def env(self) -> dict[str, str]:
        extra = s3.s3_env(self.moto.endpoint) if self.moto is not None else {}
        return {**os.environ, **extra}


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    moto = request.getfixturevalue("moto") if request.param == "s3" else None
    return Backend(request.param, tmp_path, moto)


class Forwarding:
    """A real store with one behaviour changed by a subclass."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def assert_consistent(registry: Registry, tmp_path: Path) -> None:
    """Only complete versions are visible, aliases and events tell the truth."""
    published = {r.version for r in registry.list_versions()}
    for version in published:
        verify_bundle(registry.download(version, tmp_path / f"check-{os.urandom(4).hex()}"))
    for name, alias in registry.aliases().items():
        assert alias.version in published, f"alias {name} names incomplete version {alias.version}"
    for event in registry.events():
        if event.kind in ("register", "promote", "rollback", "canary_start"):
            assert event.version in published, f"{event.kind} event for version {event.version}"


def test_s3_server_dying_mid_upload_publishes_nothing(moto: s3.MotoServer, tmp_path: Path) -> None:
    backend = Backend("s3", tmp_path, moto)
    registry = backend.registry()
    registry.promote(
        registry.register_version(make_bundle(tmp_path), actor="ci", reason="base"),
        actor="ci",
        reason="base",
    )
    port = s3.free_port()
    proxy = s3.spawn(
        "proxy", "--port", str(port), "--upstream", str(moto.port), "--die-after-bytes", "1500000"
    )
    try:
        doomed = Registry(backend.store(f"http://{s3.HOST}:{port}", retries=0), MODEL)
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises on a dead server
            doomed.register_version(
                make_bundle(tmp_path, big_file_bytes=3_000_000), actor="ci", reason="doomed"
            )
        assert proxy.wait(timeout=10) == -signal.SIGKILL  # it really died mid-request
    finally:
        proxy.kill()
        proxy.wait()

    assert [r.version for r in registry.list_versions()] == [1]
    assert registry.resolve("production") == 1
    assert [e.kind for e in registry.events()] == ["register", "promote"]
    assert_consistent(registry, tmp_path)
    # The claim of number 2 is left behind; gc settles it, and 2 is never handed out again.
    assert registry.gc(grace_seconds=0) == [2]
    assert registry.register_version(make_bundle(tmp_path), actor="ci", reason="again") == 3
    assert_consistent(registry, tmp_path)


class CorruptOneUpload(Forwarding):
    def put_file(self, key: str, path: Path) -> None:
        if key.endswith("/model.bin"):
            damaged = path.with_name("damaged.bin")
            data = bytearray(path.read_bytes())
            data[0] ^= 0xFF
            damaged.write_bytes(bytes(data))
            path = damaged
        self.inner.put_file(key, path)


def test_an_upload_failing_its_checksum_is_never_published(
    backend: Backend, tmp_path: Path
) -> None:
    registry = backend.registry()
    registry.register_version(make_bundle(tmp_path), actor="ci", reason="base")
    corrupting = Registry(CorruptOneUpload(backend.store()), MODEL)  # type: ignore[arg-type]

    with pytest.raises(IncompleteVersionError, match="did not arrive intact"):
        corrupting.register_version(make_bundle(tmp_path, payload=b"new"), actor="ci", reason="x")

    assert [r.version for r in registry.list_versions()] == [1]
    assert registry.store.list(f"models/{MODEL}/versions/2") == []  # cleaned up at once
    with pytest.raises(IncompleteVersionError):
        registry.promote(2, actor="ci", reason="must not work")
    assert [e.kind for e in registry.events()] == ["register"]
    assert_consistent(registry, tmp_path)
    assert registry.register_version(make_bundle(tmp_path), actor="ci", reason="retry") == 3


def test_a_process_killed_between_upload_and_publish_leaves_no_version(
    backend: Backend, tmp_path: Path
) -> None:
    registry = backend.registry()
    registry.promote(
        registry.register_version(make_bundle(tmp_path), actor="ci", reason="base"),
        actor="ci",
        reason="base",
    )
    bundle = make_bundle(tmp_path, payload=b"doomed")
    child = subprocess.Popen(
        [sys.executable, str(FIXTURES / "hang_before_publish.py"), backend.uri, MODEL, str(bundle)],
        stdout=subprocess.PIPE,
        env=backend.env(),
        text=True,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == "UPLOADED 2", line
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)

    # Every file of version 2 is in the store, yet nothing can see, load or point at it.
    assert registry.store.exists(f"models/{MODEL}/versions/2/manifest.json")
    assert [r.version for r in registry.list_versions()] == [1]
    with pytest.raises(VersionNotFoundError):
        registry.download(2, tmp_path / "nope")
    with pytest.raises(VersionNotFoundError):
        registry.promote(2, actor="ci", reason="must not work")
    assert "register" not in [e.kind for e in registry.events()[1:]]
    assert_consistent(registry, tmp_path)

    assert registry.gc(grace_seconds=3600) == []  # could still be uploading
    assert registry.gc(grace_seconds=0) == [2]
    assert registry.store.list(f"models/{MODEL}/versions/2") == []
    assert registry.register_version(make_bundle(tmp_path), actor="ci", reason="next") == 3
    assert_consistent(registry, tmp_path)


class BothReadTheAliasFirst(Forwarding):
    """Holds the first two alias reads until both happened, so both writers hold the same ETag."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.barrier = threading.Barrier(2, timeout=20)
        self.waits = 0
        self.lock = threading.Lock()

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        try:
            return self.inner.get_bytes(key)
        finally:
            if key.endswith("/aliases/production.json"):
                with self.lock:
                    self.waits += 1
                    wait = self.waits <= 2
                if wait:
                    self.barrier.wait()


def _race_promotions(backend: Backend, versions: tuple[int, int]) -> dict[int, str]:
    store = BothReadTheAliasFirst(backend.store())
    outcome: dict[int, str] = {}

    def promote(version: int) -> None:
        try:
            Registry(store, MODEL).promote(version, actor=f"job-{version}", reason="race")  # type: ignore[arg-type]
            outcome[version] = "won"
        except AliasConflictError:
            outcome[version] = "conflict"

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcome


def test_two_racing_promotions_one_wins_one_conflicts(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    for _ in range(4):
        registry.register_version(make_bundle(tmp_path), actor="ci", reason="v")

    for versions in ((1, 2), (3, 4)):  # first on a missing alias, then on an existing one
        outcome = _race_promotions(backend, versions)
        assert sorted(outcome.values()) == ["conflict", "won"], outcome
        winner = next(v for v, result in outcome.items() if result == "won")
        assert registry.resolve("production") == winner
        promotions = [e for e in registry.events() if e.kind == "promote"]
        assert promotions[-1].version == winner
        assert not any(e.version == next(v for v in versions if v != winner) for e in promotions)

    assert len([e for e in registry.events() if e.kind == "promote"]) == 2
    assert len(registry.alias("production").history) == 2  # type: ignore[union-attr]
    assert_consistent(registry, tmp_path)


def test_concurrent_registrations_never_share_a_number(backend: Backend, tmp_path: Path) -> None:
    writers = 6
    bundles = [make_bundle(tmp_path, payload=f"writer-{i}".encode()) for i in range(writers)]
    start = threading.Barrier(writers, timeout=20)
    numbers: dict[int, int] = {}
    errors: list[BaseException] = []

    def register(i: int) -> None:
        registry = backend.registry()
        start.wait()
        try:
            numbers[i] = registry.register_version(bundles[i], actor=f"w{i}", reason="race")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sorted(numbers.values()) == list(range(1, writers + 1))
    registry = backend.registry()
    assert [r.version for r in registry.list_versions()] == list(range(1, writers + 1))
    for i, version in numbers.items():  # each number holds exactly its writer's bundle
        got = registry.download(version, tmp_path / f"got-{i}")
        assert (got / "model.bin").read_bytes() == f"writer-{i}".encode()
        assert registry.show(version).actor == f"w{i}"
    registered = sorted(e.version for e in registry.events() if e.kind == "register")
    assert registered == list(range(1, writers + 1))
    assert_consistent(registry, tmp_path)


KILLS_PER_BACKEND = 20
BIG_FILE_BYTES = 12_000_000  # three parts of minio's 5 MiB: uploaded as a multipart upload


def _temp_files(backend: Backend) -> list[Path]:
    return sorted((backend.tmp_path / "registry").rglob(".tmp-*"))


def _incomplete_uploads(backend: Backend) -> list[dict[str, Any]]:
    """Incomplete multipart uploads in the bucket, asked through boto3 (not the code under test)."""
    import boto3

    assert backend.moto is not None
    client = boto3.client(
        "s3",
        endpoint_url=backend.moto.endpoint,
        aws_access_key_id=s3.ACCESS_KEY,
        aws_secret_access_key=s3.SECRET_KEY,
        region_name="us-east-1",
    )
    return client.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", [])


def _debris(backend: Backend) -> int:
    return len(_temp_files(backend) if backend.kind == "local" else _incomplete_uploads(backend))


def _kill_mid_upload(backend: Backend, bundle: Path, stop_points: list[int]) -> None:
    """Start one registering process per stop point, wait until each stopped, kill -9 them all."""
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(FIXTURES / "kill_mid_upload.py"),
                backend.uri,
                MODEL,
                str(bundle),
                str(stop),
            ],
            stdout=subprocess.PIPE,
            env=backend.env(),
            text=True,
        )
        for stop in stop_points
    ]
    try:
        for child in children:
            line = child.stdout.readline() if child.stdout else ""
            assert line.strip() == "MID-UPLOAD", line
        for child in children:
            os.kill(child.pid, signal.SIGKILL)
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=10)


def test_gc_removes_the_debris_of_registrations_killed_mid_upload(
    backend: Backend, tmp_path: Path
) -> None:
    registry = backend.registry()
    registry.promote(
        registry.register_version(make_bundle(tmp_path), actor="ci", reason="base"),
        actor="ci",
        reason="base",
    )
    bundle = make_bundle(tmp_path, payload=b"doomed", big_file_bytes=BIG_FILE_BYTES)
    # Stop points 0-2: in the first, second or third file (local); after 0, 1 or 2 parts (S3).
    stops = [i % 3 for i in range(KILLS_PER_BACKEND)]
    for batch in range(0, KILLS_PER_BACKEND, 5):
        _kill_mid_upload(backend, bundle, stops[batch : batch + 5])
    assert _debris(backend) == KILLS_PER_BACKEND  # each kill left one temp file / upload

    assert registry.gc(grace_seconds=3600) == []  # all could still be running
    assert _debris(backend) == KILLS_PER_BACKEND
    assert len(registry.collect(grace_seconds=0, dry_run=True).debris) == KILLS_PER_BACKEND
    assert _debris(backend) == KILLS_PER_BACKEND

    abandoned = registry.gc(grace_seconds=0)

    assert abandoned == list(range(2, KILLS_PER_BACKEND + 2))
    assert _debris(backend) == 0
    if backend.kind == "local":  # no folder is left behind either
        versions = backend.tmp_path / "registry" / "models" / MODEL / "versions"
        assert sorted(p.name for p in versions.iterdir()) == ["1"]
    assert registry.events()[-1].details["debris"] == KILLS_PER_BACKEND
    assert [r.version for r in registry.list_versions()] == [1]
    assert registry.register_version(make_bundle(tmp_path), actor="ci", reason="next") == 22
    assert_consistent(registry, tmp_path)
