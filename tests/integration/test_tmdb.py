"""The TMDb source against a local server that answers like the API, faults included."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from fakes.tmdb_server import API_KEY, FakeTmdb, Fault

from trending.data.ingest import ingest_source, snapshot_store
from trending.data.sources.tmdb import (
    TmdbAuthError,
    TmdbClient,
    TmdbError,
    TmdbSource,
    read_api_key,
)

pytestmark = pytest.mark.integration

AS_OF = datetime(2024, 5, 1, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when the client sleeps: waits are checked, never waited."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def fake():
    with FakeTmdb(page_size=2) as server:
        yield server


@pytest.fixture
def clock():
    return FakeClock()


def make_client(fake, clock, **kwargs):
    options = {"requests_per_second": 1000.0, "backoff_initial": 0.25, "max_attempts": 4}
    return TmdbClient(
        API_KEY, base_url=fake.base_url, sleep=clock.sleep, clock=clock, **(options | kwargs)
    )


def retry_waits(clock):
    """Waits longer than the 1 ms rate-limit interval: the retry waits."""
    return [w for w in clock.waits if w > 0.01]


def test_full_fetch_pages_maps_genres_and_keeps_reviews(fake, clock):
    batch = TmdbSource(make_client(fake, clock), pages=10, as_of=AS_OF).fetch()
    titles = batch.titles.set_index("title_id")

    assert len(titles) == 9  # 5 movies over 3 pages, 4 shows over 2 pages
    assert fake.hits("/3/discover/movie") == 3 and fake.hits("/3/discover/tv") == 2
    got = titles.loc["tmdb:tv:1399"]
    assert got["kind"] == "tv" and got["year"] == 2011
    assert got["genres"] == ["Action", "Adventure", "Drama", "Fantasy", "Science Fiction"]
    assert got["reviews"] == [
        "The early seasons are some of the best fantasy television ever made."
    ]
    assert titles.loc["tmdb:tv:4614", "genres"] == ["Drama", "War"]  # War & Politics -> War
    assert titles.loc["tmdb:tv:2224", "genres"] == []  # Talk has no counterpart: dropped...
    assert batch.notes["dropped_genres"] == {"Talk": 1}  # ...and counted
    assert titles.loc["tmdb:27205", "title"] == "Inception"
    assert len(titles.loc["tmdb:27205", "reviews"]) == 2
    assert pd.isna(titles.loc["tmdb:680", "year"])  # empty release_date: year unknown
    assert (titles["event_timestamp"] == AS_OF).all()
    assert batch.params["as_of"] == AS_OF.isoformat() and not batch.incremental


def test_pages_limit_caps_discovery(fake, clock):
    batch = TmdbSource(make_client(fake, clock), kinds=("movie",), pages=1, as_of=AS_OF).fetch()
    assert len(batch.titles) == 2 and fake.hits("/3/discover/movie") == 1


def test_ingest_reconciles_and_is_idempotent(fake, clock, settings):
    first = ingest_source(TmdbSource(make_client(fake, clock), as_of=AS_OF), settings)
    again = ingest_source(TmdbSource(make_client(fake, clock), as_of=AS_OF), settings)

    assert first.report.counts == {"in": 9, "accepted": 9, "rejected": 0}
    assert again.manifest.snapshot_id == first.manifest.snapshot_id
    assert [m.snapshot_id for m in snapshot_store(settings).list()] == [first.manifest.snapshot_id]
    assert first.manifest.notes["dropped_genres"] == {"Talk": 1}


def test_bad_key_fails_at_once_with_what_to_fix(fake, clock):
    client = TmdbClient("wrong", base_url=fake.base_url, sleep=clock.sleep, clock=clock)
    with pytest.raises(TmdbAuthError, match="TRENDING_TMDB_API_KEY"):
        TmdbSource(client, as_of=AS_OF).fetch()
    assert len(fake.requests) == 1  # a 401 is not retried


def test_rate_limited_answer_waits_retry_after(fake, clock):
    fake.fail("/3/discover/movie", Fault.rate_limited(retry_after=3))
    client = make_client(fake, clock, max_retry_after=60)
    batch = TmdbSource(client, kinds=("movie",), as_of=AS_OF).fetch()
    assert len(batch.titles) == 5
    assert retry_waits(clock) == [3.0]
    assert fake.hits("/3/discover/movie") == 4  # the 429, then pages 1-3


def test_retry_after_is_capped(fake, clock):
    fake.fail("/3/movie/603", Fault.rate_limited(retry_after=3600))
    client = make_client(fake, clock, max_retry_after=5)
    client.get("/movie/603")
    assert retry_waits(clock) == [5.0]


def test_server_errors_back_off_exponentially(fake, clock):
    fake.fail("/3/movie/603", Fault.server_error(500), Fault.server_error(503))
    data = make_client(fake, clock).get("/movie/603")
    assert data["title"] == "The Matrix"
    assert retry_waits(clock) == [0.25, 0.5]


@pytest.mark.parametrize(
    "fault",
    [Fault.malformed_json(), Fault.truncated(), Fault.wrong_page()],
    ids=["malformed-json", "truncated", "wrong-page"],
)
def test_broken_pages_are_fetched_again(fake, clock, fault):
    clean = TmdbSource(make_client(fake, clock), as_of=AS_OF).fetch().titles
    fake.fail("/3/discover/tv", fault)
    retried = TmdbSource(make_client(fake, clock), as_of=AS_OF).fetch().titles
    pd.testing.assert_frame_equal(retried, clean)
    assert fake.hits("/3/discover/tv") == 2 + 3  # clean run 2 pages; then 1 broken + 2


def test_run_failing_midway_writes_no_snapshot(fake, clock, settings):
    # One show's details never recover; the movies were fetched before it.
    fake.fail("/3/tv/1396", *[Fault.server_error(502)] * 10)
    with pytest.raises(TmdbError, match="after 4 attempts"):
        ingest_source(TmdbSource(make_client(fake, clock), as_of=AS_OF), settings)
    assert fake.hits("/3/movie/27205") == 1  # it did fail midway, after real work
    assert snapshot_store(settings).list() == []
    assert not (settings.data_dir / "snapshots").exists()


def test_title_gone_between_listing_and_fetch_is_reported(fake, clock):
    # On the change list, but deleted by the time its details are asked for.
    fake.changed["movie"] = [550, 603]
    del fake.titles["movie"][550]
    batch = TmdbSource(make_client(fake, clock), kinds=("movie",), as_of=AS_OF).fetch(
        since=datetime(2024, 4, 20, tzinfo=UTC)
    )
    assert batch.notes["not_found"] == ["tmdb:550"]
    assert batch.titles["title_id"].tolist() == ["tmdb:603"]


def test_incremental_run_fetches_only_changed_titles(fake, clock, settings):
    first = ingest_source(TmdbSource(make_client(fake, clock), as_of=AS_OF), settings).manifest
    fake.titles["movie"][603]["overview"] = (
        "A hacker discovers that the world he lives in is a simulation run by machines."
    )
    fake.requests.clear()
    later = datetime(2024, 5, 20, tzinfo=UTC)
    result = ingest_source(
        TmdbSource(make_client(fake, clock), as_of=later), settings, incremental=True
    )
    titles = snapshot_store(settings).read(result.manifest.snapshot_id).set_index("title_id")

    details = sorted(p for p, _, _ in fake.requests if p.count("/") == 3 and "changes" not in p)
    assert details == ["/3/movie/603", "/3/tv/1396"]
    assert fake.hits("/3/discover/movie") == 0
    changes = [q for p, q, _ in fake.requests if p == "/3/movie/changes"]
    assert changes[0]["start_date"] == "2024-05-01" and changes[-1]["end_date"] == "2024-05-20"
    assert len(changes) == 2  # 20 days in windows of at most 14
    assert len(titles) == 9
    assert titles.loc["tmdb:603", "plot"].startswith("A hacker discovers")
    assert titles.loc["tmdb:603", "event_timestamp"] == later
    assert titles.loc["tmdb:13", "event_timestamp"] == AS_OF
    assert result.manifest.parent == first.snapshot_id
    assert result.manifest.notes["incremental"]["changed_titles"] == 2


def test_requests_are_rate_limited(fake, clock):
    client = make_client(fake, clock, requests_per_second=2.0)
    for _ in range(5):
        client.get("/movie/603")
    assert clock.waits == [0.5, 0.5, 0.5, 0.5]


def test_api_key_comes_from_the_environment_or_a_secret_file(tmp_path):
    secret = tmp_path / "api-key"
    secret.write_text(f"{API_KEY}\n")
    assert read_api_key(None, secret) == API_KEY
    assert read_api_key("from-env", secret) == "from-env"
    with pytest.raises(TmdbAuthError, match="cannot read the TMDb API key file"):
        read_api_key(None, tmp_path / "missing")
    with pytest.raises(TmdbAuthError, match="set TRENDING_TMDB_API_KEY"):
        read_api_key(None, None)


def test_v4_token_is_sent_as_bearer_never_in_the_url(fake, clock):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl"
    client = TmdbClient(token, base_url=fake.base_url, sleep=clock.sleep, clock=clock)
    with pytest.raises(TmdbAuthError):
        client.get("/movie/603")
    _, query, headers = fake.requests[-1]
    assert headers["Authorization"] == f"Bearer {token}" and "api_key" not in query
