"""Labelled feedback: strict parsing, each (title, client) counted once, micro-F1 per version.

Feedback is evidence that decisions are made on (the canary policy's ``feedback_accuracy``, the
``PerformanceDegraded`` retrain), so it is parsed without trusting the body: JSON only
(``Content-Type: application/json``), UTF-8, no NaN or Infinity, valid Unicode, known fields of
bounded size. Every refusal says what to fix; no exception text or client value is echoed back
(a lone surrogate echoed in an answer would make the answer itself unencodable).

The ledger remembers which version predicted which genres for recent titles, and which
(title, client) pairs were already counted: a repeat is answered but not counted again.

Two services take feedback with this one core: the local router (``serving.router``, which sees
the answers it forwards) and, on the cluster, the drift service (``serving.drift``, which sees
every answer through the predictors' payload logger). Both require a bearer token
(:func:`bearer_token_matches`).
"""

from __future__ import annotations

import hmac
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trending.modelling.bundle.inference import (
    MAX_JSON_DEPTH,
    InvalidJSONError,
    parse_json_strictly,
)
from trending.monitoring.online_quality import FeedbackCounts

MAX_FEEDBACK_BYTES = 16 * 1024
MAX_ID_CHARS = 200
MAX_GENRES = 50
FIELDS_HINT = 'send {"title_id": "...", "genres": ["..."]} (optionally "client_id": "...")'


MIN_TOKEN_CHARS = 16


class BadFeedbackError(ValueError):
    """A feedback body that is refused; the message is for the client and echoes nothing."""


def bearer_token_matches(header: str | None, token: bytes) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header against ``token``."""
    scheme, _, credentials = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode("utf-8", "replace"), token
    )


class Feedback(BaseModel):
    """One labelled title: the genres a person says it has.

    ``client_id`` names the end user the authenticated caller speaks for; without it the client
    is the caller's network address.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    title_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    genres: list[str] = Field(max_length=MAX_GENRES)
    client_id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)

    @field_validator("title_id", "client_id")
    @classmethod
    def _valid_unicode(cls, value: str | None) -> str | None:
        if value is not None:
            value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
        return value

    @field_validator("genres")
    @classmethod
    def _genre_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not 0 < len(name) <= MAX_ID_CHARS:
                raise ValueError("genre name length")
            name.encode("utf-8")
        return value


_FIELD_PROBLEMS = {
    "title_id": f"title_id must be a non-empty string of at most {MAX_ID_CHARS} characters "
    "(valid Unicode)",
    "genres": f"genres must be a list of at most {MAX_GENRES} genre names, each a non-empty "
    f"string of at most {MAX_ID_CHARS} characters (valid Unicode)",
    "client_id": f"client_id must be a non-empty string of at most {MAX_ID_CHARS} characters "
    "(valid Unicode)",
}


def parse_feedback(raw: bytes, content_type: str | None) -> Feedback:
    """Parse and validate a feedback body.

    Args:
        raw: The body (the caller caps its size at ``MAX_FEEDBACK_BYTES``).
        content_type: The request's ``Content-Type`` header.

    Raises:
        BadFeedbackError: Saying what is wrong.
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadFeedbackError(f"send Content-Type: application/json; {FIELDS_HINT}")
    try:
        data = parse_json_strictly(raw)  # the serving edge's parser: UTF-8, finite, depth
    except InvalidJSONError:
        # Its message may quote the parser's position details; this one names the rules only.
        raise BadFeedbackError(
            "the body is not strict JSON (UTF-8, finite numbers, valid Unicode, at most "
            f"{MAX_JSON_DEPTH} levels deep); {FIELDS_HINT}"
        ) from None
    if not isinstance(data, dict):
        raise BadFeedbackError(f"the body must be a JSON object; {FIELDS_HINT}")
    try:
        return Feedback.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        if first["type"] == "extra_forbidden":
            raise BadFeedbackError(f"the body has an unknown field; {FIELDS_HINT}") from None
        field = str(first["loc"][0]) if first["loc"] else ""
        problem = _FIELD_PROBLEMS.get(field, FIELDS_HINT)
        if first["type"] == "missing":
            problem = f"{field} is required; {FIELDS_HINT}"
        raise BadFeedbackError(problem) from None


@dataclass(frozen=True)
class FeedbackOutcome:
    """What one feedback post did: the version judged, its agreement, and whether it counted."""

    version: int
    predicted: list[str]
    counted: bool


class UnknownTitleError(LookupError):
    """Feedback for a title no recent prediction through this router covered."""


class FeedbackLedger:
    """Recent predictions by title, and the (title, client) pairs already counted; both bounded.

    Args:
        max_titles: Predictions remembered (oldest forgotten first); feedback for a forgotten
            title is refused as unknown.
        max_counted: (title, client) pairs remembered as counted. It is larger than
            ``max_titles`` so that a pair is forgotten only long after its title is.
    """

    def __init__(self, *, max_titles: int = 10_000, max_counted: int = 100_000) -> None:
        self.max_titles, self.max_counted = max_titles, max_counted
        self._predicted: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
        self._counted: OrderedDict[tuple[str, str], None] = OrderedDict()

    def remember(self, instances: Sequence[Any], version: int, sets: list[list[str]]) -> None:
        """Note which version predicted which genres for the instances that carry a title_id."""
        self.remember_titles(
            (
                (t.get("title_id") if isinstance(t, dict) else None, genres)
                for t, genres in zip(instances, sets, strict=False)
            ),
            version,
        )

    def remember_titles(
        self, predictions: Iterable[tuple[str | None, list[str]]], version: int
    ) -> int:
        """Note ``(title_id, predicted genres)`` pairs of ``version``; returns how many.

        Pairs without a title id are skipped (nothing could match feedback with them).
        """
        remembered = 0
        for title_id, genres in predictions:
            if isinstance(title_id, str) and title_id:
                self._predicted[title_id] = (version, list(genres))
                self._predicted.move_to_end(title_id)
                remembered += 1
        while len(self._predicted) > self.max_titles:
            self._predicted.popitem(last=False)
        return remembered

    def record(self, feedback: Feedback, client: str) -> FeedbackOutcome:
        """Match feedback with its prediction; count it unless this client already sent it.

        Raises:
            UnknownTitleError: No recent prediction of the title.
        """
        if feedback.title_id not in self._predicted:
            raise UnknownTitleError(feedback.title_id)
        version, predicted = self._predicted[feedback.title_id]
        key = (feedback.title_id, client)
        if key in self._counted:
            return FeedbackOutcome(version, predicted, counted=False)
        self._counted[key] = None
        while len(self._counted) > self.max_counted:
            self._counted.popitem(last=False)
        return FeedbackOutcome(version, predicted, counted=True)


class RollingMicroF1:
    """Micro-F1 per model version over its last ``window`` labelled titles.

    Each counted feedback adds one title's genre decisions (true positives, false positives,
    false negatives); the oldest title leaves the window when a new one arrives, so the score
    follows the current traffic (``trending.monitoring.online_quality`` counts all time).
    """

    def __init__(self, window: int = 500) -> None:
        if window < 1:
            raise ValueError("the feedback window must hold at least one title")
        self.window = window
        self._titles: dict[int, deque[FeedbackCounts]] = {}

    def add(self, version: int, predicted: Iterable[str], labelled: Iterable[str]) -> None:
        """Count one labelled title of ``version``."""
        titles = self._titles.setdefault(version, deque(maxlen=self.window))
        titles.append(FeedbackCounts(**FeedbackCounts.outcomes(predicted, labelled)))

    def counts(self, version: int) -> FeedbackCounts:
        """The summed decisions of the version's window."""
        titles = self._titles.get(version, ())
        return FeedbackCounts(
            tp=sum(t.tp for t in titles), fp=sum(t.fp for t in titles), fn=sum(t.fn for t in titles)
        )

    def titles(self, version: int) -> int:
        """Labelled titles in the version's window."""
        return len(self._titles.get(version, ()))

    def micro_f1(self, version: int) -> float | None:
        """``2TP / (2TP + FP + FN)`` over the window; None without any genre decision."""
        return self.counts(version).micro_f1


@dataclass(frozen=True)
class FeedbackReceipt:
    """What one feedback post did, and the version's rolling score after it."""

    version: int
    predicted: list[str]
    counted: bool
    micro_f1: float | None
    window_titles: int


class FeedbackScorer:
    """Labelled feedback matched with the predictions it judges, scored per version.

    The service that sees the answers calls :meth:`remember` with each answer's title ids and
    genres; :meth:`receive` parses a post, counts it once per (title, client) and updates the
    version's rolling micro-F1.

    Args:
        window: Labelled titles per version in the rolling micro-F1.
        ledger: The prediction memory (default: a new :class:`FeedbackLedger`).
    """

    def __init__(self, *, window: int = 500, ledger: FeedbackLedger | None = None) -> None:
        self.ledger = ledger or FeedbackLedger()
        self.rolling = RollingMicroF1(window)

    def remember(self, predictions: Iterable[tuple[str | None, list[str]]], version: int) -> int:
        """Note which genres ``version`` predicted for which title ids."""
        return self.ledger.remember_titles(predictions, version)

    def receive(self, raw: bytes, content_type: str | None, client: str) -> FeedbackReceipt:
        """Parse, match, deduplicate and score one feedback body.

        Args:
            raw: The request body.
            content_type: Its ``Content-Type`` header.
            client: Who sent it when the body names no ``client_id`` (the caller's address).

        Raises:
            BadFeedbackError: The body is too large or invalid (the message says what to fix).
            UnknownTitleError: No recent prediction of the title.
        """
        if len(raw) > MAX_FEEDBACK_BYTES:
            raise BadFeedbackError(f"the body has more than {MAX_FEEDBACK_BYTES} bytes")
        item = parse_feedback(raw, content_type)
        outcome = self.ledger.record(item, item.client_id or client)
        if outcome.counted:
            self.rolling.add(outcome.version, outcome.predicted, item.genres)
        return FeedbackReceipt(
            version=outcome.version,
            predicted=outcome.predicted,
            counted=outcome.counted,
            micro_f1=self.rolling.micro_f1(outcome.version),
            window_titles=self.rolling.titles(outcome.version),
        )
