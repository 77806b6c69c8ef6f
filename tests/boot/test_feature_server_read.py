"""The transformer's cluster read path against Feast's own feature server (its real FastAPI app)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from feast.feature_server import get_app

from serving.transformer.model import (
    FeatureServerFeatures,
    FeatureServerUnavailableError,
    open_online_features,
)
from trending.features.featurize import FEATURE_COLUMNS
from trending.features.store import TitleFeatureStore

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def feature_server(tmp_path_factory, titles):
    """``feast serve``'s app over a local store holding 5 titles, on a free loopback port."""
    store = TitleFeatureStore(REPO_ROOT / "feature_repo", tmp_path_factory.mktemp("feast"))
    store.publish(titles.head(5))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(get_app(store.store), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store
    server.should_exit = True
    thread.join(10)


def test_feature_server_rows_equal_the_stores_own_online_read(feature_server, titles) -> None:
    url, store = feature_server
    ids = [*titles["title_id"].head(3), "nowhere:0"]
    rows = FeatureServerFeatures(url).online(ids)
    assert rows == store.online(ids)
    assert rows[-1] is None
    assert rows[0]["plot"] == titles.iloc[0]["plot"].strip()


def test_unreachable_feature_server_is_a_clear_502(feature_server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FeatureServerUnavailableError, match="unreachable") as info:
        FeatureServerFeatures(f"http://127.0.0.1:{port}").online(["x"])
    assert info.value.status == 502


def test_a_configured_url_selects_the_feature_server(tmp_path) -> None:
    chosen = open_online_features("http://feature-server:6566", tmp_path, tmp_path)
    assert isinstance(chosen, FeatureServerFeatures)
    with pytest.raises(ValueError, match="http://host:port"):
        open_online_features("feature-server:6566", tmp_path, tmp_path)


def test_an_unknown_id_from_the_redis_store_is_none() -> None:
    """`feast serve` on Redis answers an unknown key PRESENT with a null value (boot test's find)."""

    def answer(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["entities"]["title_id"]
        known = [title_id == "tmdb:1" for title_id in ids]
        results = [{"values": ids, "statuses": ["PRESENT"] * len(ids)}]
        for column in FEATURE_COLUMNS:
            value = "A plot." if column == "plot" else 1
            results.append(
                {
                    "values": [value if k else None for k in known],
                    "statuses": ["PRESENT"] * len(ids),
                    "event_timestamps": [
                        "2024-01-01T00:00:00Z" if k else "1970-01-01T00:00:00Z" for k in known
                    ],
                }
            )
        names = ["title_id", *FEATURE_COLUMNS]
        return httpx.Response(200, json={"metadata": {"feature_names": names}, "results": results})

    features = FeatureServerFeatures("http://feature-server:6566")
    features.client = httpx.Client(transport=httpx.MockTransport(answer))
    known, unknown = features.online(["tmdb:1", "nowhere:0"])
    assert unknown is None
    assert known == {
        "title_id": "tmdb:1",
        "plot": "A plot.",
        **dict.fromkeys(FEATURE_COLUMNS[1:], 1),
    }
