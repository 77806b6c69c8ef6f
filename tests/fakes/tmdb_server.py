"""A local HTTP server that answers like the TMDb v3 API, with scripted faults.

Endpoints: ``/3/discover/{movie,tv}``, ``/3/{movie,tv}/changes``, ``/3/{movie,tv}/<id>`` (with
``append_to_response=reviews``). Answers carry TMDb's shapes and error bodies (status_code 7 for
a bad key, 25 for rate limiting, 34 for not found). Faults are queued per path and consumed one
per request, so every test is deterministic:

    server.fail("/3/discover/movie", Fault.rate_limited(retry_after=3), Fault.server_error())
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API_KEY = "test-key-0123456789abcdef"
BAD_KEY = "Invalid API key: You must be granted a valid key."
NOT_FOUND = "The resource you requested could not be found."
MOVIE_GENRES = {28: "Action", 12: "Adventure", 35: "Comedy", 18: "Drama", 878: "Science Fiction"}
TV_GENRES = {
    10759: "Action & Adventure",
    10765: "Sci-Fi & Fantasy",
    10768: "War & Politics",
    10762: "Kids",
    10764: "Reality",
    10767: "Talk",
    18: "Drama",
}


@dataclass(frozen=True)
class Fault:
    """One scripted bad answer."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    truncate: bool = False  # announce more bytes than are sent, then close

    @classmethod
    def rate_limited(cls, retry_after: int = 2) -> Fault:
        body = {
            "success": False,
            "status_code": 25,
            "status_message": "Your request count (41) is over the allowed limit of (40).",
        }
        return cls(429, json.dumps(body).encode(), (("Retry-After", str(retry_after)),))

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        body = {"success": False, "status_code": 9, "status_message": "Service offline."}
        return cls(status, json.dumps(body).encode())

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls(200, b'{"page": 1, "results": [{"id": 1,, }')

    @classmethod
    def truncated(cls) -> Fault:
        return cls(200, b'{"page": 1, "results": [{"id": 27205, "title": "Incep', truncate=True)

    @classmethod
    def wrong_page(cls) -> Fault:
        """A well-formed answer for another page (a cache or proxy gone wrong)."""
        return cls(200, json.dumps({"page": 99, "results": [], "total_pages": 1}).encode())


def movie(tmdb_id: int, title: str, overview: str, genre_ids: list[int], date: str) -> dict:
    return {
        "adult": False,
        "id": tmdb_id,
        "title": title,
        "original_title": title,
        "overview": overview,
        "genres": [{"id": g, "name": MOVIE_GENRES[g]} for g in genre_ids],
        "release_date": date,
        "popularity": 50.0 + tmdb_id % 7,
        "vote_average": 7.9,
        "original_language": "en",
    }


def show(tmdb_id: int, name: str, overview: str, genre_ids: list[int], date: str) -> dict:
    return {
        "adult": False,
        "id": tmdb_id,
        "name": name,
        "original_name": name,
        "overview": overview,
        "genres": [{"id": g, "name": TV_GENRES[g]} for g in genre_ids],
        "first_air_date": date,
        "popularity": 80.0,
        "origin_country": ["US"],
    }


def catalogue() -> dict[str, dict[int, dict]]:
    """Five movies and four shows with realistic fields (overviews paraphrased)."""
    movies = [
        movie(
            27205,
            "Inception",
            "A thief who steals corporate secrets through dream-sharing "
            "technology is given the task of planting an idea into a CEO's mind.",
            [28, 878, 12],
            "2010-07-15",
        ),
        movie(
            603,
            "The Matrix",
            "A computer hacker learns from mysterious rebels about the true "
            "nature of his reality and his role in the war against its controllers.",
            [28, 878],
            "1999-03-30",
        ),
        movie(
            13,
            "Forrest Gump",
            "A man with a low IQ recounts the remarkable events of his "
            "life, from the Vietnam War to the civil rights movement.",
            [35, 18],
            "1994-06-23",
        ),
        movie(
            550,
            "Fight Club",
            "An insomniac office worker and a soap maker form an "
            "underground fight club that evolves into something much more.",
            [18],
            "1999-10-15",
        ),
        movie(
            680,
            "Pulp Fiction",
            "The lives of two mob hitmen, a boxer and a pair of diner "
            "bandits intertwine in four tales of violence and redemption.",
            [18],
            "",
        ),
    ]
    shows = [
        show(
            1399,
            "Game of Thrones",
            "Seven noble families fight for control of the mythical "
            "land of Westeros while an ancient enemy returns.",
            [10765, 18, 10759],
            "2011-04-17",
        ),
        show(
            1396,
            "Breaking Bad",
            "A chemistry teacher diagnosed with cancer turns to making "
            "and selling methamphetamine to secure his family's future.",
            [18],
            "2008-01-20",
        ),
        show(
            2224,
            "The Daily Show",
            "A satirical late-night program that looks at the news of "
            "the day with interviews and comedy segments.",
            [10767],
            "1996-07-22",
        ),
        show(
            4614,
            "NCIS: Origins",
            "A young special agent investigates crimes involving the "
            "navy and the marine corps in the early years of the agency.",
            [10768, 18],
            "2024-10-14",
        ),
    ]
    return {"movie": {m["id"]: m for m in movies}, "tv": {s["id"]: s for s in shows}}


REVIEWS = {
    ("movie", 27205): [
        "A layered heist movie that keeps folding in on itself; the score is unforgettable.",
        "Ambitious and loud, but the dream logic holds together better than expected.",
    ],
    ("tv", 1399): ["The early seasons are some of the best fantasy television ever made."],
}


class FakeTmdb:
    """The fake API; ``base_url`` is the ``/3`` root to give the client."""

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.titles = catalogue()
        self.changed: dict[str, list[int]] = {"movie": [603], "tv": [1396]}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/3"

    def fail(self, path: str, *faults: Fault) -> None:
        """Queue faults for ``path`` (e.g. ``/3/discover/movie``), one per request."""
        with self._lock:
            self.faults[path].extend(faults)

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)

    def __enter__(self) -> FakeTmdb:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _paged(self, items: list[dict], query: dict[str, str]) -> tuple[int, dict]:
        page = int(query.get("page", "1"))
        total_pages = max(1, -(-len(items) // self.page_size))
        if page < 1 or page > 500:
            return 400, {"success": False, "status_code": 22, "status_message": "Invalid page."}
        chunk = items[(page - 1) * self.page_size : page * self.page_size]
        return 200, {
            "page": page,
            "results": chunk,
            "total_pages": total_pages,
            "total_results": len(items),
        }

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        not_found = (404, {"success": False, "status_code": 34, "status_message": NOT_FOUND})
        if len(parts) == 3 and parts[1] == "discover" and parts[2] in self.titles:
            kind = parts[2]
            listed = [
                {k: v for k, v in t.items() if k != "genres"}
                | {"genre_ids": [g["id"] for g in t["genres"]]}
                for t in sorted(self.titles[kind].values(), key=lambda t: -t["popularity"])
            ]
            return self._paged(listed, query)
        if len(parts) == 3 and parts[1] in self.titles and parts[2] == "changes":
            if "start_date" not in query:
                return 422, {
                    "success": False,
                    "status_code": 5,
                    "status_message": "Invalid parameters",
                }
            changed = [{"id": i, "adult": False} for i in self.changed[parts[1]]]
            return self._paged(changed, query)
        if len(parts) == 3 and parts[1] in self.titles and parts[2].isdigit():
            kind, tmdb_id = parts[1], int(parts[2])
            if tmdb_id not in self.titles[kind]:
                return not_found
            data = dict(self.titles[kind][tmdb_id])
            if "reviews" in query.get("append_to_response", ""):
                texts = REVIEWS.get((kind, tmdb_id), [])
                data["reviews"] = {
                    "page": 1,
                    "results": [
                        {
                            "author": f"critic{i}",
                            "content": text,
                            "id": f"r{tmdb_id}{i}",
                            "created_at": "2020-01-01T00:00:00.000Z",
                            "url": "https://example.org",
                        }
                        for i, text in enumerate(texts)
                    ],
                    "total_pages": 1,
                    "total_results": len(texts),
                }
            return 200, data
        return not_found

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers=(), length: int | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(length if length is not None else len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with fake._lock:
                    fake.requests.append((url.path, query, dict(self.headers)))
                    fault = fake.faults[url.path].popleft() if fake.faults[url.path] else None
                key = query.get("api_key") or self.headers.get("Authorization", "").removeprefix(
                    "Bearer "
                )
                if key != API_KEY:
                    body = {"status_code": 7, "success": False, "status_message": BAD_KEY}
                    self._send(401, json.dumps(body).encode())
                    return
                if fault is not None:
                    length = len(fault.body) + 500 if fault.truncate else None
                    self._send(fault.status, fault.body, fault.headers, length)
                    if fault.truncate:
                        self.close_connection = True
                    return
                status, body = fake.answer(url.path, query)
                self._send(status, json.dumps(body).encode())

        return Handler
