"""Titles from the TMDb API (v3): movies and TV shows with overviews, genres and reviews.

* **Key**: ``TRENDING_TMDB_API_KEY`` or a file named by ``TRENDING_TMDB_API_KEY_FILE`` (a mounted
  Kubernetes Secret); never a CLI flag. A v4 read-access token (a JWT) is sent as
  ``Authorization: Bearer``, a v3 key as the ``api_key`` query parameter.
* **Paging**: discover and changes lists are read page by page (TMDb serves at most 500 pages).
* **Rate limiting**: at most ``requests_per_second`` requests (TMDb allows about 40-50/s); a 429
  is retried after its ``Retry-After``.
* **Retries** (tenacity): 429, 5xx, connection errors, malformed JSON and truncated pages are
  retried with exponential backoff; 401 and other 4xx fail at once with what to fix.
* **Incremental**: with ``since``, only titles on TMDb's change lists since then are fetched
  (in windows of at most 14 days, TMDb's limit); ingest lays them over the previous snapshot.
* **Idempotent**: every row's ``event_timestamp`` is the run's ``as_of`` (default: today 00:00 UTC)
  and rows are sorted by id, so the same answers give the same snapshot id.
* **All or nothing**: ``fetch`` returns the whole batch or raises; nothing is written midway.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pandas as pd
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from trending.data.schema import TITLE_COLUMNS
from trending.data.sources.base import ProgressCallback, SourceBatch, no_progress
from trending.data.sources.genre_mapping import map_genres
from trending.data.sources.licence import TMDB_LICENCE

DEFAULT_BASE_URL = "https://api.themoviedb.org/3"
MAX_PAGES = 500  # TMDb answers "Invalid page" beyond this
MAX_CHANGE_WINDOW_DAYS = 14  # TMDb answers "Invalid date range" beyond this
Kind = Literal["movie", "tv"]


class TmdbError(RuntimeError):
    """TMDb could not be read; the message says what to fix."""


class TmdbAuthError(TmdbError):
    """TMDb refused the API key (401)."""


class TmdbNotFoundError(TmdbError):
    """The resource does not exist (404), e.g. a title deleted since it was listed."""


class _RetryableError(Exception):
    """A failure worth retrying: rate limited, server error, broken or truncated answer."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def read_api_key(value: str | None, file: Path | None) -> str:
    """The API key from the environment value, else from the mounted Secret file.

    Raises:
        TmdbAuthError: Neither is set, or the file is missing or empty.
    """
    if value and value.strip():
        return value.strip()
    if file is not None:
        try:
            key = Path(file).read_text().strip()
        except OSError as exc:
            raise TmdbAuthError(
                f"cannot read the TMDb API key file {file} ({exc.strerror}); mount the Secret "
                "there or set TRENDING_TMDB_API_KEY_FILE to where it is mounted"
            ) from None
        if key:
            return key
        raise TmdbAuthError(f"the TMDb API key file {file} is empty")
    raise TmdbAuthError(
        "no TMDb API key: set TRENDING_TMDB_API_KEY, or TRENDING_TMDB_API_KEY_FILE to a file "
        "holding it (a mounted Kubernetes Secret)"
    )


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TmdbClient:
    """A small TMDb v3 client: auth, rate limit, retries with backoff, JSON checks.

    Args:
        api_key: A v3 API key or a v4 read-access token.
        base_url: The API root (a local fake server in tests).
        language: ``language`` parameter of every request.
        requests_per_second: Upper bound on the request rate.
        max_attempts: Attempts per request, the first included.
        backoff_initial: First backoff wait in seconds; doubles per attempt.
        backoff_max: Longest backoff wait.
        max_retry_after: Longest wait honoured from a ``Retry-After`` header.
        timeout: Connect/read timeout per request in seconds.
        sleep: How to wait (tests pass a recorder, so waits are checked without waiting).
        clock: Monotonic clock of the rate limiter.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        language: str = "en-US",
        requests_per_second: float = 20.0,
        max_attempts: int = 6,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be positive, got {requests_per_second}")
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.min_interval = 1.0 / requests_per_second
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.clock = clock
        self._next_slot = 0.0
        self.requests_sent = 0
        headers = {"Accept": "application/json"}
        self._auth_params: dict[str, str] = {}
        if api_key.startswith("eyJ") and api_key.count(".") == 2:
            headers["Authorization"] = f"Bearer {api_key}"
        else:
            self._auth_params = {"api_key": api_key}
        self._http = httpx.Client(headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> TmdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _throttle(self) -> None:
        now = self.clock()
        if now < self._next_slot:
            self.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + self.min_interval

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        return min(self.backoff_initial * 2 ** (state.attempt_number - 1), self.backoff_max)

    def _get_once(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self._throttle()
        self.requests_sent += 1
        query = {"language": self.language, **params, **self._auth_params}
        try:
            response = self._http.get(f"{self.base_url}{path}", params=query)
        except httpx.TransportError as exc:  # refused, reset, timed out, truncated body
            raise _RetryableError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 429:
            raise _RetryableError(f"GET {path}: 429 rate limited", _retry_after_seconds(response))
        if status >= 500:
            raise _RetryableError(f"GET {path}: {status} server error")
        if status == 401:
            raise TmdbAuthError(
                f"TMDb refused the API key (401 on {path}): check TRENDING_TMDB_API_KEY or the "
                "mounted key file; a v4 token must be the 'API Read Access Token'"
            )
        if status == 404:
            raise TmdbNotFoundError(f"GET {path}: 404 not found")
        if status >= 400:
            raise TmdbError(f"GET {path} with {params}: {status} {response.text[:200]}")
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _RetryableError(
                f"GET {path}: malformed JSON ({len(response.content)} bytes)"
            ) from None
        if not isinstance(data, dict):
            raise _RetryableError(f"GET {path}: expected a JSON object, got {type(data).__name__}")
        return data

    def _retrying(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception_type(_RetryableError),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(call)
        except _RetryableError as exc:
            raise TmdbError(
                f"TMDb kept failing after {self.max_attempts} attempts ({exc}); nothing was "
                "written — run the ingest again later"
            ) from None

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``path`` (e.g. ``/movie/603``) with retries; return the JSON object.

        Raises:
            TmdbAuthError: 401. TmdbNotFoundError: 404. TmdbError: other 4xx, or still failing
            after ``max_attempts``.
        """
        return self._retrying(lambda: self._get_once(path, params))

    def _page(self, path: str, params: dict[str, Any], page: int) -> dict[str, Any]:
        def checked() -> dict[str, Any]:
            data = self._get_once(path, {**params, "page": page})
            if not isinstance(data.get("results"), list) or data.get("page") != page:
                raise _RetryableError(f"GET {path} page {page}: truncated or malformed page")
            return data

        return self._retrying(checked)

    def pages(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        max_pages: int = MAX_PAGES,
        progress: ProgressCallback = no_progress,
    ) -> Iterator[dict[str, Any]]:
        """Yield the ``results`` items of every page of a paged list, up to ``max_pages``."""
        params = dict(params or {})
        page, last = 1, 1
        while page <= last:
            data = self._page(path, params, page)
            last = min(int(data.get("total_pages") or 1), max_pages, MAX_PAGES)
            progress(path, page, last)
            yield from data["results"]
            page += 1


def _year(value: Any) -> int | str | None:
    """The year of a TMDb date ('1999-03-30'); '' and null are unknown; anything else as given."""
    if value in (None, ""):
        return None
    text = str(value)
    return int(text[:4]) if text[:4].isdigit() else text


def title_id_of(kind: Kind, tmdb_id: int) -> str:
    """The platform id of a TMDb title: ``tmdb:<id>`` for movies, ``tmdb:tv:<id>`` for shows.

    Movie and TV ids are separate number spaces in TMDb, so TV ids carry their kind.
    """
    return f"tmdb:{tmdb_id}" if kind == "movie" else f"tmdb:tv:{tmdb_id}"


def default_as_of() -> datetime:
    """Today at 00:00 UTC: two runs on the same day stamp the same event time."""
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


class TmdbSource:
    """Movies and TV shows from TMDb as title records.

    Args:
        client: The API client.
        kinds: Which of ``movie`` and ``tv`` to read.
        pages: Discover pages per kind in a full run (20 titles per page).
        discover_params: Extra discover parameters (the "query"), e.g. ``{"sort_by": ...}``.
        max_reviews: Reviews kept per title (the first page of its reviews).
        as_of: The event time stamped on every row (default: today 00:00 UTC).
    """

    name = "tmdb"
    licence = TMDB_LICENCE

    def __init__(
        self,
        client: TmdbClient,
        *,
        kinds: tuple[Kind, ...] = ("movie", "tv"),
        pages: int = 5,
        discover_params: dict[str, Any] | None = None,
        max_reviews: int = 10,
        as_of: datetime | None = None,
    ) -> None:
        if pages < 1:
            raise ValueError(f"pages must be at least 1, got {pages}")
        if not kinds or set(kinds) - {"movie", "tv"}:
            raise ValueError(f"kinds must be 'movie' and/or 'tv', got {list(kinds)}")
        self.client = client
        self.kinds = kinds
        self.pages = pages
        self.discover_params = {
            "sort_by": "popularity.desc",
            "include_adult": "false",
            **(discover_params or {}),
        }
        self.max_reviews = max_reviews
        self.as_of = (as_of or default_as_of()).astimezone(UTC)

    def _discover(self, kind: Kind, progress: ProgressCallback) -> list[int]:
        items = self.client.pages(
            f"/discover/{kind}", self.discover_params, max_pages=self.pages, progress=progress
        )
        return [int(item["id"]) for item in items if "id" in item]

    def _changed(self, kind: Kind, since: datetime, progress: ProgressCallback) -> list[int]:
        ids: list[int] = []
        start: date = since.astimezone(UTC).date()
        end = self.as_of.date()
        while start <= end:
            stop = min(start + timedelta(days=MAX_CHANGE_WINDOW_DAYS - 1), end)
            window = {"start_date": start.isoformat(), "end_date": stop.isoformat()}
            items = self.client.pages(f"/{kind}/changes", window, progress=progress)
            ids += [int(i["id"]) for i in items if "id" in i and not i.get("adult")]
            start = stop + timedelta(days=1)
        return ids

    def _record(self, kind: Kind, data: dict[str, Any], dropped: Counter[str]) -> dict[str, Any]:
        reviews = (data.get("reviews") or {}).get("results") or []
        names = [g.get("name", "") for g in data.get("genres") or [] if isinstance(g, dict)]
        return {
            "title_id": title_id_of(kind, int(data["id"])),
            "title": data.get("title") if kind == "movie" else data.get("name"),
            "kind": kind,
            "plot": data.get("overview"),
            "reviews": [r.get("content") for r in reviews[: self.max_reviews]],
            "year": _year(data.get("release_date" if kind == "movie" else "first_air_date")),
            "genres": map_genres(names, dropped),
            "source": "tmdb",
            "event_timestamp": self.as_of,
        }

    def fetch(
        self, *, since: datetime | None = None, progress: ProgressCallback = no_progress
    ) -> SourceBatch:
        """Fetch the titles (all discovered ones, or those changed since ``since``)."""
        wanted: list[tuple[Kind, int]] = []
        for kind in self.kinds:
            ids = self._changed(kind, since, progress) if since else self._discover(kind, progress)
            wanted += [(kind, i) for i in dict.fromkeys(ids)]
        rows: list[dict[str, Any]] = []
        dropped: Counter[str] = Counter()
        not_found: list[str] = []
        for done, (kind, tmdb_id) in enumerate(wanted, start=1):
            try:
                data = self.client.get(f"/{kind}/{tmdb_id}", append_to_response="reviews")
            except TmdbNotFoundError:
                not_found.append(title_id_of(kind, tmdb_id))  # deleted since it was listed
            else:
                rows.append(self._record(kind, data, dropped))
            progress("details", done, len(wanted))
        titles = pd.DataFrame(rows, columns=list(TITLE_COLUMNS))
        titles = titles.sort_values("title_id", kind="stable").reset_index(drop=True)
        params: dict[str, Any] = {
            "kinds": list(self.kinds),
            "as_of": self.as_of.isoformat(),
            "language": self.client.language,
        }
        if since:
            params["changed_since"] = since.astimezone(UTC).isoformat()
        else:
            params |= {"pages": self.pages, "discover": self.discover_params}
        notes: dict[str, Any] = {"listed": len(wanted), "requests": self.client.requests_sent}
        if not_found:
            notes["not_found"] = not_found
        if dropped:
            notes["dropped_genres"] = dict(sorted(dropped.items()))
        return SourceBatch(
            titles=titles,
            params=params,
            notes=notes,
            incremental=since is not None,
            licence=self.licence,
        )
