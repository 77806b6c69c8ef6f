"""The fast Feast paths: online reads and materialization through the online store class.

All are judged by Feast's own SDK: the reader's rows against ``get_online_features``; what
materialization writes by the rows the online store's ``online_write_batch`` receives and by
reading it back with ``get_online_features`` (every feature type, nulls included, next to what
``write_to_online_store`` wrote for the same rows).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.infra.online_stores.sqlite import SqliteOnlineStore
from feast.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)

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
    return pd.Timedelta(hours=n)


# --- materialization through the online store class, read back through Feast's SDK ---------

EVERY_TYPE_FIELDS = {
    "text": String,
    "count": Int64,
    "small": Int32,
    "ratio": Float64,
    "ratio_single": Float32,
    "flag": Bool,
    "texts": Array(String),
    "counts": Array(Int64),
    "ratios": Array(Float64),
    "stamp": UnixTimestamp,
    "blob": Bytes,
}


def every_type_store(tmp_path: Path, backend: str, port: int | None):
    """A Feast store (SQLite or Redis) with one view holding a field of every kind we write."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig

    online = (
        {"type": "sqlite", "path": str(tmp_path / "online.db")}
        if backend == "sqlite"
        else {"type": "redis", "connection_string": f"127.0.0.1:{port}"}
    )
    config = RepoConfig(
        project="every_type",
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store=online,
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=tmp_path,
    )
    store = FeatureStore(config=config)
    entity = Entity(name="title", join_keys=["title_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="every_type",
        entities=[entity],
        ttl=timedelta(days=365 * 100),
        schema=[Field(name=n, dtype=t) for n, t in EVERY_TYPE_FIELDS.items()],
        source=FileSource(path=str(tmp_path / "rows.parquet"), timestamp_field="event_timestamp"),
        online=True,
    )
    store.apply([entity, view])
    return store


def every_type_rows(prefix: str) -> pd.DataFrame:
    """Three rows: values of every type, nulls everywhere, and zeros/empties (not nulls)."""
    return pd.DataFrame(
        {
            "title_id": [f"{prefix}:full", f"{prefix}:nulls", f"{prefix}:zeros"],
            "event_timestamp": pd.to_datetime(
                ["2024-03-01T12:30:00", "2024-03-02T00:00:00", "1970-01-01T00:00:00"], utc=True
            ),
            "text": ["a heist", None, ""],
            "count": pd.array([42, None, 0], dtype="Int64"),
            "small": pd.array([7, None, 0], dtype="Int32"),
            "ratio": [0.25, np.nan, 0.0],
            "ratio_single": [1.5, np.nan, 0.0],
            "flag": pd.array([True, None, False], dtype="boolean"),
            "texts": [np.array(["good", "long"]), None, np.array([], dtype=object)],
            "counts": [[1, 2, 3], None, []],
            "ratios": [[0.5, 1.5], None, []],
            "stamp": pd.to_datetime(["2023-12-31T23:59:59", None, "1970-01-01T00:00:00"], utc=True),
            "blob": [b"\x00\x01", None, b""],
        }
    )


def sdk_read(store, ids: list[str], names) -> dict[str, list]:
    refs = [f"every_type:{n}" for n in names]
    response = store.get_online_features(features=refs, entity_rows=[{"title_id": i} for i in ids])
    return response.to_dict(include_event_timestamps=True)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_every_feature_type_written_by_the_writer_reads_back_through_the_sdk(
    tmp_path, request, backend
) -> None:
    from trending.features.online_write import OnlineWriter

    port = request.getfixturevalue("redis_port") if backend == "redis" else None
    store = every_type_store(tmp_path, backend, port)
    view = store.get_feature_view("every_type")
    ours, sdks = every_type_rows("ours"), every_type_rows("sdk")
    assert OnlineWriter(store.config, batch_rows=2).write(view, ours) == 3
    store.write_to_online_store("every_type", sdks)

    names = list(EVERY_TYPE_FIELDS)
    got = sdk_read(store, ours["title_id"].tolist(), names)
    # What Feast's own write_to_online_store wrote reads back identically (ids aside).
    want = sdk_read(store, sdks["title_id"].tolist(), names)
    assert {k: v for k, v in got.items() if k != "title_id"} == {
        k: v for k, v in want.items() if k != "title_id"
    }
    # And it is what was written: values, nulls as None, zeros and empties as such.
    full, nulls, zeros = ({n: got[n][row] for n in names} for row in range(3))
    assert full == {
        "text": "a heist",
        "count": 42,
        "small": 7,
        "ratio": 0.25,
        "ratio_single": 1.5,
        "flag": True,
        "texts": ["good", "long"],
        "counts": [1, 2, 3],
        "ratios": [0.5, 1.5],
        "stamp": datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
        "blob": b"\x00\x01",
    }
    assert nulls == dict.fromkeys(names)
    assert zeros == {
        "text": "",
        "count": 0,
        "small": 0,
        "ratio": 0.0,
        "ratio_single": 0.0,
        "flag": False,
        "texts": [],
        "counts": [],
        "ratios": [],
        "stamp": datetime(1970, 1, 1, tzinfo=UTC),
        "blob": b"",
    }
    # The event time of each row, as Feast returns it with every feature (whole seconds).
    seconds = [int(t.timestamp()) for t in ours["event_timestamp"]]
    assert all(got[f"{n}__ts"] == seconds for n in names)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_materialized_titles_read_back_through_the_sdk_as_the_offline_rows(
    tmp_path, request, backend
) -> None:
    from trending.features.featurize import FEATURE_COLUMNS, title_features

    if backend == "redis":
        store = redis_store(tmp_path, request.getfixturevalue("redis_port"))
    else:
        store = local_store(tmp_path)
    titles = generate_titles(30, seed=35)
    reviews = titles["reviews"].tolist()
    reviews[5] = []  # a title without reviews
    titles["reviews"] = reviews
    titles.loc[6, "year"] = None  # unknown year: 0 in the features
    store.write_source(titles)
    store.apply()
    assert store.materialize() == 30

    expected = title_features(titles).set_index("title_id")
    served = store.online_via_sdk(titles["title_id"].tolist())
    for row in served:
        offline = expected.loc[row["title_id"]]
        for column in FEATURE_COLUMNS:
            want = list(offline[column]) if column == "reviews" else offline[column]
            got = list(row[column]) if column == "reviews" else row[column]
            assert got == want, (row["title_id"], column)
    assert served[5]["reviews"] == [] and served[6]["year"] == 0
