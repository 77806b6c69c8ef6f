"""Open a title source by name with plain parameters (CLI flags, pipeline parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from trending.data.sources.base import TitleSource
from trending.data.sources.files import ColumnMapping, FileSource
from trending.data.sources.synthetic import SyntheticSource
from trending.data.sources.tmdb import TmdbClient, TmdbSource, read_api_key
from trending.data.synthetic import DriftKnobs
from trending.settings import Settings

SOURCE_NAMES = ("tmdb", "file", "synthetic")


def _as_of(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def open_source(
    name: str, params: Mapping[str, Any] | None = None, settings: Settings | None = None
) -> TitleSource:
    """Build the source ``name`` from plain parameters.

    Args:
        name: ``synthetic`` (params: rows, seed, drift), ``file`` (path, mapping: a dict or a
            JSON/YAML file, as_of, licence: a name or a mapping, see sources.licence) or
            ``tmdb`` (pages, kinds, discover, max_reviews, as_of,
            requests_per_second).
        params: The source's parameters.
        settings: For ``tmdb``: where the API key is; read from the environment when None.

    Raises:
        ValueError: Unknown source or missing parameter, saying which.
    """
    params = dict(params or {})
    if name == "synthetic":
        drift = params.get("drift")
        return SyntheticSource(
            int(params.get("rows", 1000)),
            seed=int(params.get("seed", 7)),
            drift=DriftKnobs(**drift) if isinstance(drift, Mapping) else None,
        )
    if name == "file":
        if not params.get("path"):
            raise ValueError("source 'file' needs a path (--path FILE)")
        mapping = params.get("mapping")
        mapping_path = None
        if isinstance(mapping, Mapping):
            mapping = ColumnMapping.model_validate(mapping)
        elif mapping:
            mapping_path = Path(str(mapping))
            mapping = ColumnMapping.load(mapping_path)
        return FileSource(
            Path(str(params["path"])),
            mapping=mapping or None,
            mapping_path=mapping_path,
            as_of=_as_of(params.get("as_of")),
            licence=params.get("licence") or None,
        )
    if name == "tmdb":
        settings = settings or Settings()
        secret = settings.tmdb_api_key.get_secret_value() if settings.tmdb_api_key else None
        client = TmdbClient(
            read_api_key(secret, settings.tmdb_api_key_file),
            base_url=settings.tmdb_base_url,
            requests_per_second=float(params.get("requests_per_second", 20.0)),
        )
        kinds = params.get("kinds", ("movie", "tv"))
        return TmdbSource(
            client,
            kinds=tuple(kinds.split(",") if isinstance(kinds, str) else kinds),
            pages=int(params.get("pages", 5)),
            discover_params=params.get("discover"),
            max_reviews=int(params.get("max_reviews", 10)),
            as_of=_as_of(params.get("as_of")),
        )
    raise ValueError(f"unknown source {name!r}; choose one of {list(SOURCE_NAMES)}")
