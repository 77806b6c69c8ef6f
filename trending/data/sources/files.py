"""Title records from CSV, Parquet and JSONL files, through a documented column mapping.

Resolution of each Title record field, first match wins (docs/data.md, "Column mapping"):

1. the file column the mapping names for it (``columns: {source_column: field}``);
2. a column with the field's own name;
3. a well-known synonym (``overview`` -> plot, ``name`` -> title, ``id`` -> title_id, ...);
4. derived: ``year`` from ``release_date`` / ``first_air_date``;
5. the mapping's ``defaults``, else the built-in default (kind ``movie``, no reviews, no
   genres, source ``file:<file name>``, event_timestamp = ``as_of`` or 1970-01-01T00:00Z).

Values are not coerced beyond the documented parsing (genre and review strings are split, genre
names are mapped by trending.data.sources.genre_mapping): a wrong type reaches validation and the row
is quarantined with a reason.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trending.data.schema import TITLE_COLUMNS
from trending.data.sources.base import ProgressCallback, SourceBatch, no_progress
from trending.data.sources.genre_mapping import map_genres
from trending.data.sources.licence import SourceLicence, parse_licence

# "Valid since ever": a static export says nothing about when its values became true.
DEFAULT_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "title_id": ("id", "tmdb_id", "movie_id"),
    "title": ("name", "original_title", "original_name"),
    "plot": ("overview", "description", "summary", "synopsis"),
    "genres": ("genre", "genre_names"),
    "reviews": ("review", "review_texts"),
    "kind": ("media_type", "type"),
    "year": ("release_year",),
    "event_timestamp": ("updated_at", "timestamp"),
}
DATE_COLUMNS = ("release_date", "first_air_date")


class ColumnMapping(BaseModel):
    """How a file's columns become Title record fields (a JSON or YAML file, ``--mapping``)."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(
        default_factory=dict, description="file column -> Title record field"
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="field -> value for files without that column"
    )
    genre_separator: str = Field("|", description="Splits a genres string ('Action|Comedy').")
    review_separator: str | None = Field(
        None, description="Splits a reviews string; None keeps it as one review."
    )
    title_id_prefix: str = Field("", description="Prepended to every id, e.g. 'tmdb:'.")
    licence: str | dict[str, Any] | None = Field(
        None,
        description="The file's licence: a name ('tmdb') or {name, commercial_use, attribution, "
        "url, terms}; ingest refuses a file without one.",
    )

    def model_post_init(self, context: Any) -> None:
        """Refuse targets that are not Title record fields."""
        wrong = sorted(set(self.columns.values()) - set(TITLE_COLUMNS))
        wrong += sorted(set(self.defaults) - set(TITLE_COLUMNS))
        if wrong:
            raise ValueError(
                f"column mapping names {wrong}, which are not Title record fields; "
                f"use one of {list(TITLE_COLUMNS)}"
            )

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        """Read a mapping from a ``.json`` or ``.yaml``/``.yml`` file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read the column mapping {path}: {exc}") from None
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise ValueError(f"column mapping {path} is invalid: {exc}") from None


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL file as it is (CSV cells as text, so nothing is guessed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass an existing file with --path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=True)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    raise ValueError(f"{path.name}: unsupported file type; use one of {SUPPORTED_SUFFIXES}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _as_list(value: Any, separator: str | None) -> Any:
    """A list from a list/array cell, a JSON list string or a separated string; else unchanged."""
    if _is_missing(value):
        return []
    if isinstance(value, np.ndarray | list | tuple):
        return [v for v in list(value)]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return value
            return parsed if isinstance(parsed, list) else value
        if not text:
            return []
        return [p.strip() for p in text.split(separator)] if separator else [text]
    return value  # a wrong type: validation says so


def _year_from_date(value: Any) -> Any:
    if _is_missing(value) or value == "":
        return None
    text = str(value)
    return int(text[:4]) if len(text) >= 4 and text[:4].isdigit() else text


class FileSource:
    """A CSV, Parquet or JSONL file of titles."""

    name = "file"

    def __init__(
        self,
        path: Path,
        *,
        mapping: ColumnMapping | None = None,
        mapping_path: Path | None = None,
        as_of: datetime | None = None,
        licence: SourceLicence | dict[str, Any] | str | None = None,
    ) -> None:
        self.path = Path(path)
        self.mapping = mapping or ColumnMapping()
        self.mapping_path = mapping_path
        self.as_of = as_of
        # Declared by the caller (or the mapping file); None makes ingest refuse the file.
        declared = licence if licence is not None else self.mapping.licence
        self.licence: SourceLicence | None = (
            parse_licence(declared) if declared is not None else None
        )

    def fetch(
        self, *, since: datetime | None = None, progress: ProgressCallback = no_progress
    ) -> SourceBatch:
        """Read the file and map its columns (``since`` is ignored: a file is read whole)."""
        raw = read_table(self.path)
        progress("read", len(raw), len(raw))
        titles, notes = self.to_titles(raw)
        params: dict[str, Any] = {"path": str(self.path.resolve()), "file": self.path.name}
        if self.mapping_path is not None:
            params["mapping_file"] = str(self.mapping_path)
        params["mapping"] = self.mapping.model_dump()
        if self.as_of is not None:
            params["as_of"] = self.as_of.isoformat()
        if self.licence is not None:
            params["licence"] = self.licence.model_dump(mode="json")
        return SourceBatch(titles=titles, params=params, notes=notes, licence=self.licence)

    def _column_for(self, field: str, frame: pd.DataFrame) -> str | None:
        for column, target in self.mapping.columns.items():
            if target == field:
                if column not in frame.columns:
                    raise ValueError(
                        f"the column mapping maps {column!r} to {field!r}, but {self.path.name} "
                        f"has no column {column!r} (it has {list(frame.columns)})"
                    )
                return column
        if field in frame.columns:
            return field
        return next((s for s in SYNONYMS.get(field, ()) if s in frame.columns), None)

    def to_titles(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Map a raw table onto the Title record columns; return the rows and notes."""
        m = self.mapping
        n = len(raw)
        used: dict[str, str] = {}
        out: dict[str, Any] = {}
        for field in TITLE_COLUMNS:
            column = self._column_for(field, raw)
            if column is not None:
                used[field] = column
                out[field] = raw[column].astype(object).tolist()
        if "title_id" not in out:
            raise ValueError(
                f"{self.path.name} has no id column: name one with a mapping "
                f"(columns: {{<your id column>: title_id}}); columns are {list(raw.columns)}"
            )
        if "plot" not in out:
            raise ValueError(
                f"{self.path.name} has no plot column: name one with a mapping "
                f"(columns: {{<your plot column>: plot}}); columns are {list(raw.columns)}"
            )
        if "year" not in out:
            date_column = next((c for c in DATE_COLUMNS if c in raw.columns), None)
            if date_column is not None:
                used["year"] = f"{date_column} (year of)"
                out["year"] = [_year_from_date(v) for v in raw[date_column]]
        defaults: dict[str, Any] = {
            "kind": "movie",
            "reviews": [],
            "genres": [],
            "source": f"file:{self.path.name}",
            "event_timestamp": self.as_of or DEFAULT_EVENT_TIME,
            "year": None,
            "title": None,
            **m.defaults,
        }
        for field in TITLE_COLUMNS:
            if field not in out:
                out[field] = [defaults[field]] * n
        out["title_id"] = [
            v if _is_missing(v) else f"{m.title_id_prefix}{v}" for v in out["title_id"]
        ]
        if self.as_of is not None and "event_timestamp" not in used:
            out["event_timestamp"] = [self.as_of] * n
        dropped: Counter[str] = Counter()
        genres = [_as_list(v, m.genre_separator) for v in out["genres"]]
        out["genres"] = [map_genres(g, dropped) if isinstance(g, list) else g for g in genres]
        out["reviews"] = [_as_list(v, m.review_separator) for v in out["reviews"]]
        titles = pd.DataFrame({c: out[c] for c in TITLE_COLUMNS})
        notes: dict[str, Any] = {
            "columns_used": used,
            "defaulted": sorted(set(TITLE_COLUMNS) - set(used)),
            "ignored_columns": sorted(set(raw.columns) - set(used.values()) - set(DATE_COLUMNS)),
        }
        if dropped:
            notes["dropped_genres"] = dict(sorted(dropped.items()))
        return titles, notes
