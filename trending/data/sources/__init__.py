"""Title sources behind one interface: the TMDb API, files (CSV/Parquet/JSONL), synthetic data."""

from trending.data.sources.base import ProgressCallback, SourceBatch, TitleSource, no_progress
from trending.data.sources.catalog import SOURCE_NAMES, open_source
from trending.data.sources.files import ColumnMapping, FileSource
from trending.data.sources.genre_mapping import map_genres
from trending.data.sources.licence import (
    SourceLicence,
    UndeclaredLicenceError,
    licence_for,
)
from trending.data.sources.synthetic import SyntheticSource
from trending.data.sources.tmdb import TmdbClient, TmdbError, TmdbSource

__all__ = [
    "SOURCE_NAMES",
    "ColumnMapping",
    "FileSource",
    "ProgressCallback",
    "SourceBatch",
    "SourceLicence",
    "SyntheticSource",
    "TitleSource",
    "TmdbClient",
    "TmdbError",
    "TmdbSource",
    "UndeclaredLicenceError",
    "licence_for",
    "map_genres",
    "no_progress",
    "open_source",
]
