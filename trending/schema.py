"""The Title record contract and the batch check every ingest runs.

Each row is checked against ``TitleRecord`` (pydantic); the batch is then checked for duplicate
ids. Rows that fail are returned with their reasons, never dropped silently: in = accepted + rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors()
    )


def validate_titles(
    frame: pd.DataFrame, vocabulary: GenreVocabulary | None = None
) -> ValidationReport:
    """Check every row against the Title record and the batch for duplicate ``title_id``.

    Args:
        frame: rows to check; extra columns are a reason to reject (the contract is closed).
        vocabulary: when given, genres outside it are a reason to reject.

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
        row = {k: _plain(v) for k, v in raw.items()}
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
            rejected.append({**raw, "row": row_number, "reason": "; ".join(reasons)})
        else:
            accepted.append(record.model_dump())  # type: ignore[union-attr]
    accepted_frame = pd.DataFrame(accepted, columns=list(TITLE_COLUMNS))
    if not accepted_frame.empty:
        accepted_frame["event_timestamp"] = pd.to_datetime(accepted_frame["event_timestamp"], utc=True)
    rejected_frame = pd.DataFrame(rejected, columns=[*frame.columns, "row", "reason"])
    return ValidationReport(accepted=accepted_frame, rejected=rejected_frame)
