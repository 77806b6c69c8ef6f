"""The fast Feast paths: online reads through the online store class, incremental materialization.

Both are judged against Feast's own SDK: the reader's rows against ``get_online_features``, and
what materialization writes by the rows the online store's ``online_write_batch`` receives.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.infra.online_stores.sqlite import SqliteOnlineStore

from trending.data.synthetic import generate_titles
from trending.features.store import TitleFeatureStore

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

REDIS_YAML = """project: trending
provider: local
registry: registry.db
online_store:
  type: redis
  connection_string: 127.0.0.1:{port}
offline_store:
  type: file
entity_key_serialization_version: 3
"""


@pytest.fixture
def redis_port():
    """A throw-away redis-server from the distribution on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.05)
    yield port
    server.terminate()
    server.wait(10)


def local_store(tmp_path: Path) -> TitleFeatureStore:
    return TitleFeatureStore(REPO_ROOT / "feature_repo", tmp_path / "feast")


def redis_store(tmp_path: Path, port: int) -> TitleFeatureStore:
    """The project's feature repo with a Redis online store (the cluster's kind of store)."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "feature_store.yaml").write_text(REDIS_YAML.format(port=port))
    return TitleFeatureStore(repo, tmp_path / "feast")


def count_written(monkeypatch, store_class: type) -> list[int]:
    """Record how many rows each ``online_write_batch`` call of ``store_class`` receives."""
    written: list[int] = []
    original = store_class.online_write_batch

    def recording(self, config, table, data, progress):
        written.append(len(data))
        return original(self, config, table, data, progress)

    monkeypatch.setattr(store_class, "online_write_batch", recording)
    return written


def assert_reader_matches_sdk(store: TitleFeatureStore, ids: list[str]) -> None:
    asked = [*ids[:12], "synthetic:does-not-exist", ids[3], *ids[12:]]
    got = store.online(asked)
    assert got == store.online_via_sdk(asked)
    assert got[12] is None
    assert got[13] == got[3] and got[3]["title_id"] == ids[3]
    assert [row["title_id"] for row in got if row is not None] == [
        a for a in asked if a != asked[12]
    ]


def test_online_reader_returns_what_feast_get_online_features_returns_sqlite(tmp_path) -> None:
    titles = generate_titles(40, seed=31)
    store = local_store(tmp_path)
    store.publish(titles)
    assert_reader_matches_sdk(store, titles["title_id"].tolist())


def test_online_reader_returns_what_feast_get_online_features_returns_redis(
    tmp_path, redis_port
) -> None:
    titles = generate_titles(40, seed=32)
    store = redis_store(tmp_path, redis_port)
    store.publish(titles)
    assert_reader_matches_sdk(store, titles["title_id"].tolist())


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_second_materialization_writes_only_the_changed_titles(
    tmp_path, monkeypatch, request, backend
) -> None:
    if backend == "redis":
        store = redis_store(tmp_path, request.getfixturevalue("redis_port"))
        written = count_written(monkeypatch, RedisOnlineStore)
    else:
        store = local_store(tmp_path)
        written = count_written(monkeypatch, SqliteOnlineStore)
    titles = generate_titles(50, seed=33)
    store.write_source(titles)
    store.apply()
    assert store.materialize() == 50
    assert sum(written) == 50

    changed = titles.copy()
    for row in (4, 17, 30):  # new plots, same titles, a later event time
        changed.loc[row, "plot"] = f"A rewritten plot number {row}: the crew returns for one job."
        changed.loc[row, "event_timestamp"] += pd_hours(1)
    store.write_source(changed)
    written.clear()
    assert store.materialize() == 3
    assert sum(written) == 3
    served = store.online(changed["title_id"].tolist())
    assert [r["plot"] for r in served] == changed["plot"].tolist()

    written.clear()
    assert store.materialize() == 0  # nothing changed since
    assert sum(written) == 0
    assert store.materialize(full=True) == 50
    assert sum(written) == 50


def test_a_changed_plot_with_the_same_event_time_is_written(tmp_path, monkeypatch) -> None:
    """File sources without dates stamp every row 1970-01-01: the values, not the time, changed."""
    written = count_written(monkeypatch, SqliteOnlineStore)
    titles = generate_titles(10, seed=34)
    store = local_store(tmp_path)
    store.publish(titles)
    changed = titles.copy()
    changed.loc[2, "plot"] = "Same stamp, new plot: a lighthouse keeper finds a map."
    store.write_source(changed)
    written.clear()
    assert store.materialize() == 1
    assert sum(written) == 1
    assert store.online([titles.loc[2, "title_id"]])[0]["plot"] == changed.loc[2, "plot"]


def pd_hours(n: int):
    import pandas as pd

    return pd.Timedelta(hours=n)
