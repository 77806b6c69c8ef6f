"""The Title record contract and the batch check every ingest runs.

Each row is checked against ``TitleRecord`` (pydantic): types, ranges, text length, language
sanity (mostly letters, no control characters or binary garbage); the batch is then checked for
genres outside the vocabulary and duplicate ids. Rows that fail are returned with their reasons,
never dropped silently: in = accepted + rejected. ``distribution_warnings`` compares a batch with
the previous snapshot (genre priors, plot length, kinds) and reports, never rejects.
See docs/data.md ("Validation rules") and docs/adr/0005-data-validation.md.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trending.data.privacy import FREE_TEXT_COLUMNS, mask_row
from trending.genres import GenreVocabulary

SCHEMA_VERSION = 1
TITLE_COLUMNS = (
    "title_id",
    "title",
    "kind",
    "plot",
    "reviews",
    "year",
    "genres",
    "source",
    "event_timestamp",
)
MAX_PLOT_CHARS = 20_000
MIN_PLOT_CHARS = 20
MAX_REVIEW_CHARS = 20_000
# Language sanity: among non-space characters of a plot, at least this share must be letters.
MIN_LETTER_SHARE = 0.6
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def _garbage_reason(text: str) -> str | None:
    """Why ``text`` is not natural-language text, or None when it looks fine."""
    controls = sum(
        1 for ch in text if unicodedata.category(ch) in ("Cc", "Cs") and ch not in _ALLOWED_CONTROLS
    )
    if controls:
        return f"contains {controls} control character(s): binary or mis-decoded data"
    if text.count("\ufffd") > max(2, len(text) // 100):
        return (
            "contains replacement characters (\ufffd): the text was decoded with the wrong encoding"
        )
    visible = [ch for ch in text if not ch.isspace()]
    if visible:
        letters = sum(ch.isalpha() for ch in visible) / len(visible)
        if letters < MIN_LETTER_SHARE:
            return (
                f"only {letters:.0%} of its characters are letters (at least "
                f"{MIN_LETTER_SHARE:.0%} expected): not natural-language text"
            )
    return None


class TitleRecord(BaseModel):
    """One movie or TV show: the unit of data everywhere in the platform."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title_id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    kind: Literal["movie", "tv"]
    plot: str = Field(min_length=1, max_length=MAX_PLOT_CHARS)
    reviews: list[str] = Field(default_factory=list, max_length=50)
    year: int | None = Field(None, ge=1870, le=2100)
    genres: list[str] = Field(default_factory=list)
    source: str = Field(min_length=1)
    event_timestamp: datetime

    @field_validator("event_timestamp")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("genres", "reviews")
    @classmethod
    def _no_blank_items(cls, value: list[str]) -> list[str]:
        if any(not str(v).strip() for v in value):
            raise ValueError("contains an empty item")
        return value

    @field_validator("plot")
    @classmethod
    def _plot_is_text(cls, value: str) -> str:
        if len(value) < MIN_PLOT_CHARS:
            raise ValueError(
                f"is too short ({len(value)} characters, at least {MIN_PLOT_CHARS}): a plot "
                "summary is a sentence or more"
            )
        if reason := _garbage_reason(value):
            raise ValueError(reason)
        return value

    @field_validator("title")
    @classmethod
    def _title_is_text(cls, value: str) -> str:
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("contains control characters: binary or mis-decoded data")
        return value

    @field_validator("reviews")
    @classmethod
    def _reviews_are_text(cls, value: list[str]) -> list[str]:
        for i, review in enumerate(value):
            if len(review) > MAX_REVIEW_CHARS:
                raise ValueError(f"review {i} is longer than {MAX_REVIEW_CHARS} characters")
            if reason := _garbage_reason(review):
                raise ValueError(f"review {i} {reason}")
        return value


@dataclass
class ValidationReport:
    """The outcome of checking one batch: accepted rows, rejected rows with reasons, counts."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame  # the offending row as given plus `row` and `reason`

    @property
    def counts(self) -> dict[str, int]:
        """Rows in, accepted and rejected (in == accepted + rejected)."""
        return {
            "in": len(self.accepted) + len(self.rejected),
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
        }

    @property
    def reject_rate(self) -> float:
        """Share of rejected rows (0 for an empty batch)."""
        total = self.counts["in"]
        return len(self.rejected) / total if total else 0.0


def _plain(value: Any) -> Any:
    """Turn pandas/numpy cell values into plain Python for pydantic."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


def validate_titles(
    frame: pd.DataFrame,
    vocabulary: GenreVocabulary | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Check every row against the Title record and the batch for duplicate ``title_id``.

    Args:
        frame: rows to check; extra columns are a reason to reject (the contract is closed).
        vocabulary: when given, genres outside it are a reason to reject.
        progress: called as ``progress(done, total)`` every 500 rows and at the end.

    Returns:
        A report whose ``accepted`` frame is normalised (stripped text, UTC timestamps) and whose
        ``rejected`` frame keeps each failing row with its 0-based ``row`` number and ``reason``.
    """
    missing = [c for c in ("title_id", "plot") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the batch has no {', '.join(missing)} column: every batch needs the Title record "
            f"columns {list(TITLE_COLUMNS)}"
        )
    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row_number, raw in enumerate(frame.to_dict(orient="records")):
        # Personal data is masked before anything else sees the row (docs/data.md, "Privacy").
        row = mask_row({k: _plain(v) for k, v in raw.items()})
        if row.get("reviews") is None:
            row["reviews"] = []
        if row.get("genres") is None:
            row["genres"] = []
        reasons = []
        try:
            record = TitleRecord.model_validate(row)
        except ValidationError as exc:
            record = None
            reasons.append(_reason(exc))
        if record is not None:
            if vocabulary is not None and (unknown := vocabulary.unknown(record.genres)):
                reasons.append(f"genres: unknown genre(s) {unknown}")
            if record.title_id in seen:
                reasons.append(f"title_id: duplicate of row {seen[record.title_id]}")
            else:
                seen[record.title_id] = row_number
        if reasons:
            masked_raw = {**raw, **{k: row[k] for k in FREE_TEXT_COLUMNS if k in raw}}
            rejected.append({**masked_raw, "row": row_number, "reason": "; ".join(reasons)})
        else:
            accepted.append(record.model_dump())  # type: ignore[union-attr]
        if progress is not None and (row_number + 1) % 500 == 0:
            progress(row_number + 1, len(frame))
    if progress is not None:
        progress(len(frame), len(frame))
    accepted_frame = pd.DataFrame(accepted, columns=list(TITLE_COLUMNS))
    if not accepted_frame.empty:
        accepted_frame["event_timestamp"] = pd.to_datetime(
            accepted_frame["event_timestamp"], utc=True
        )
    rejected_frame = pd.DataFrame(rejected, columns=[*frame.columns, "row", "reason"])
    return ValidationReport(accepted=accepted_frame, rejected=rejected_frame)


def _genre_shares(titles: pd.DataFrame) -> pd.Series:
    """Share of titles carrying each genre."""
    if titles.empty:
        return pd.Series(dtype=float)
    counts = pd.Series([g for genres in titles["genres"] for g in genres]).value_counts()
    return counts / len(titles)


def _shifted(a: float, n_a: int, b: float, n_b: int, min_shift: float) -> bool:
    """A share moved by more than ``min_shift`` and by more than sampling noise (|z| > 3)."""
    pooled = (a * n_a + b * n_b) / (n_a + n_b)
    noise = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_a + 1 / n_b))
    return abs(b - a) > min_shift and abs(b - a) > 3 * noise


def distribution_warnings(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    genre_share_shift: float = 0.05,
    plot_length_shift: float = 0.25,
    kind_share_shift: float = 0.10,
) -> list[str]:
    """Compare a validated batch with the previous snapshot; return readable warnings.

    These are a report for a human (or an alert), not row rejections: data may drift for good
    reasons, but nobody should learn about it from a worse model. A share is reported when it
    moved by more than the threshold and by more than sampling noise (two-proportion |z| > 3),
    so a re-sample of the same distribution stays quiet.

    Args:
        current: The accepted rows of this batch.
        previous: The rows of the previous snapshot of the same source.
        genre_share_shift: Warn when a genre's share of titles moves by more than this.
        plot_length_shift: Warn when the median plot length changes by more than this fraction.
        kind_share_shift: Warn when the share of TV shows moves by more than this.

    Returns:
        One sentence per finding; empty when the batch looks like the previous one.
    """
    if current.empty or previous.empty:
        return []
    warnings: list[str] = []
    n_now, n_before = len(current), len(previous)
    now, before = _genre_shares(current), _genre_shares(previous)
    for genre in sorted(set(now.index) | set(before.index)):
        a, b = float(before.get(genre, 0.0)), float(now.get(genre, 0.0))
        if _shifted(a, n_before, b, n_now, genre_share_shift):
            warnings.append(
                f"genre prior: {genre} on {b:.1%} of titles (previous snapshot {a:.1%})"
            )
    unlabeled_now = float((current["genres"].map(len) == 0).mean())
    unlabeled_before = float((previous["genres"].map(len) == 0).mean())
    if _shifted(unlabeled_before, n_before, unlabeled_now, n_now, genre_share_shift):
        warnings.append(
            f"unlabeled titles: {unlabeled_now:.1%} (previous snapshot {unlabeled_before:.1%})"
        )
    median_now = float(current["plot"].str.len().median())
    median_before = float(previous["plot"].str.len().median())
    if median_before and abs(median_now / median_before - 1) > plot_length_shift:
        warnings.append(
            f"plot length: median {median_now:.0f} characters (previous snapshot "
            f"{median_before:.0f})"
        )
    tv_now = float((current["kind"] == "tv").mean())
    tv_before = float((previous["kind"] == "tv").mean())
    if _shifted(tv_before, n_before, tv_now, n_now, kind_share_shift):
        warnings.append(f"kinds: {tv_now:.1%} TV shows (previous snapshot {tv_before:.1%})")
    return warnings
