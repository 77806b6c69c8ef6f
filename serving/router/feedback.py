"""Labelled feedback at the router: a strict parser, and a ledger that counts each (title, client) once.

Feedback is evidence the canary policy decides on (``feedback_accuracy``), so it is parsed without
trusting the body: JSON only (``Content-Type: application/json``), UTF-8, no NaN or Infinity,
valid Unicode, known fields of bounded size. Every refusal says what to fix in the router's own
words; no exception text or client value is echoed back (a lone surrogate echoed in an answer
would make the answer itself unencodable).

The ledger remembers which version predicted which genres for recent titles, and which
(title, client) pairs were already counted: a repeat is answered but not counted again.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_FEEDBACK_BYTES = 16 * 1024
MAX_ID_CHARS = 200
MAX_GENRES = 50
FIELDS_HINT = 'send {"title_id": "...", "genres": ["..."]} (optionally "client_id": "...")'


class BadFeedbackError(ValueError):
    """A feedback body the router refuses; the message is for the client and echoes nothing."""


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


def _reject_constant(name: str) -> Any:
    raise BadFeedbackError(f"the body has {name}: send finite numbers only; {FIELDS_HINT}")


def parse_feedback(raw: bytes, content_type: str | None) -> Feedback:
    """Parse and validate a feedback body.

    Args:
        raw: The body (the caller caps its size at ``MAX_FEEDBACK_BYTES``).
        content_type: The request's ``Content-Type`` header.

    Raises:
        BadFeedbackError: Saying what is wrong, in the router's words.
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadFeedbackError(f"send Content-Type: application/json; {FIELDS_HINT}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFeedbackError(f"the body is not valid UTF-8; {FIELDS_HINT}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadFeedbackError(f"the body nests too deeply; {FIELDS_HINT}") from None
    except ValueError:
        raise BadFeedbackError(f"the body is not valid JSON; {FIELDS_HINT}") from None
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
        for title, genres in zip(instances, sets, strict=False):
            title_id = title.get("title_id") if isinstance(title, dict) else None
            if isinstance(title_id, str) and title_id:
                self._predicted[title_id] = (version, genres)
                self._predicted.move_to_end(title_id)
        while len(self._predicted) > self.max_titles:
            self._predicted.popitem(last=False)

    def record(self, feedback: Feedback, client: str) -> FeedbackOutcome:
        """Match feedback with its prediction; count it unless this client already sent it.

        Raises:
            UnknownTitleError: No recent prediction of the title through this router.
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
