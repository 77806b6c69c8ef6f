"""File sources, genre mapping, quarantine of corrupted files, distribution warnings, lineage."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from fixtures.bundles import make_bundle
from typer.testing import CliRunner

from cli import app
from trending.data.ingest import (
    RejectRateExceededError,
    ingest_frame,
    ingest_source,
    snapshot_store,
)
from trending.data.lineage import data_lineage
from trending.data.schema import distribution_warnings, validate_titles
from trending.data.sources import ColumnMapping, FileSource, map_genres
from trending.data.sources.files import DEFAULT_EVENT_TIME
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.registry import Registry

PLOTS = [
    "A retired hitman is pulled back into the underworld when gangsters kill the dog his late "
    "wife left him.",
    "Two strangers meet on a night train across Europe and spend one long evening talking.",
    "A crew of astronauts travels through a wormhole near Saturn to find a new home for humanity.",
    "A family moves into a farmhouse where a malevolent presence torments their daughters.",
    "An aging boxer gets one last shot at the title against the reigning heavyweight champion.",
    "A young wizard discovers a hidden school of magic and an enemy who wants him dead.",
]


def dev_like_frame() -> pd.DataFrame:
    """Rows shaped like tmdb-movies-dev.parquet: snake_case lowercase genres, Int64 years."""
    frame = pd.DataFrame(
        {
            "title_id": [f"tmdb:{i}" for i in (245891, 76, 157336, 138843, 1366, 671)],
            "title": [
                "John Wick",
                "Before Sunrise",
                "Interstellar",
                "The Conjuring",
                "Rocky",
                "Harry Potter and the Philosopher's Stone",
            ],
            "plot": PLOTS,
            "genres": [
                ["action", "thriller"],
                ["drama", "romance"],
                ["adventure", "drama", "science_fiction"],
                ["horror", "thriller"],
                ["drama"],
                ["adventure", "fantasy", "family"],
            ],
            "year": pd.array([2014, 1995, 2014, 2013, 1976, 2001], dtype="Int64"),
            "source": ["tmdb_top10k_2023"] * 6,
        }
    )
    return frame.astype({"title_id": "string", "title": "string", "plot": "string"})


@pytest.fixture
def dev_file(tmp_path):
    path = tmp_path / "titles.parquet"
    dev_like_frame().to_parquet(path, index=False)
    return path


def test_dev_shaped_parquet_loads_with_documented_defaults(dev_file, settings):
    result = ingest_source(FileSource(dev_file, licence="tmdb"), settings)
    titles = snapshot_store(settings).read(result.manifest.snapshot_id).set_index("title_id")

    assert result.report.counts == {"in": 6, "accepted": 6, "rejected": 0}
    assert titles.loc["tmdb:157336", "genres"].tolist() == ["Adventure", "Drama", "Science Fiction"]
    assert (titles["kind"] == "movie").all() and titles["reviews"].map(len).eq(0).all()
    assert (titles["event_timestamp"] == DEFAULT_EVENT_TIME).all()
    assert titles.loc["tmdb:76", "source"] == "tmdb_top10k_2023"
    assert result.manifest.notes["defaulted"] == ["event_timestamp", "kind", "reviews"]
    assert result.manifest.params["file"] == "titles.parquet"


def test_corrupted_copy_is_quarantined_row_by_row(tmp_path, settings):
    frame = dev_like_frame().astype({"year": "string"})
    frame.loc[0, "year"] = "twenty-fourteen"  # wrong type
    frame.loc[1, "plot"] = "   "  # empty plot
    frame.loc[2, "genres"] = ["space_opera"]  # unknown genre
    frame.loc[3, "title_id"] = frame.loc[4, "title_id"]  # duplicate id
    frame.loc[5, "plot"] = "\x00\x13\x7fPK\x03\x04 binary garbage \x00\x00 from a zip file"
    bad = pd.concat([frame, dev_like_frame().iloc[[0]].assign(title_id="tmdb:1")])
    path = tmp_path / "corrupted.parquet"
    bad.astype({"year": "string"}).to_parquet(path, index=False)

    result = ingest_source(FileSource(path, licence="tmdb"), settings, max_reject_rate=1.0)
    counts = result.report.counts
    rejects = snapshot_store(settings).rejects(result.manifest.snapshot_id)
    reasons = dict(zip(rejects["row"], rejects["reason"], strict=True))

    assert counts == {"in": 7, "accepted": 2, "rejected": 5}
    assert counts["in"] == counts["accepted"] + counts["rejected"]
    assert reasons[0].startswith("year: Input should be a valid integer")
    assert reasons[1] == "plot: String should have at least 1 character"
    assert reasons[2] == "genres: unknown genre(s) ['space_opera']"
    assert reasons[4] == "title_id: duplicate of row 3"
    assert reasons[5].startswith("plot: contains") and "control character" in reasons[5]
    assert set(rejects["title_id"]) >= {"tmdb:245891", "tmdb:76", "tmdb:157336"}


def test_too_many_rejects_fail_the_batch_and_write_nothing(tmp_path, settings):
    frame = dev_like_frame()
    frame["plot"] = "short"
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(RejectRateExceededError, match="6 of 6 rows rejected"):
        ingest_source(FileSource(path, licence="tmdb"), settings)
    assert snapshot_store(settings).list() == []


def test_own_csv_export_loads_through_a_mapping_file(tmp_path, settings):
    export = pd.DataFrame(
        {
            "movie_key": ["603", "13"],
            "name": ["The Matrix", "Forrest Gump"],
            "synopsis_en": [PLOTS[2], PLOTS[1]],
            "genre": ["Action|Sci-Fi & Fantasy", "Comedy|Drama|Reality"],
            "release_date": ["1999-03-30", "1994-06-23"],
            "media_type": ["movie", "movie"],
            "popularity": ["80.1", "60.2"],
        }
    )
    export.to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "mapping.yaml").write_text(
        "columns:\n  movie_key: title_id\n  synopsis_en: plot\n"
        "title_id_prefix: 'tmdb:'\ndefaults:\n  source: my-export\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "data",
            "validate",
            str(tmp_path / "mine.csv"),
            "--mapping",
            str(tmp_path / "mapping.yaml"),
        ],
        env={"TRENDING_HOME": str(settings.home)},
    )
    assert result.exit_code == 0, result.output
    assert "in=2 accepted=2 rejected=0" in result.output
    assert "genre labels dropped by the genre mapping: 1" in result.output
    assert not settings.home.exists()  # validate writes nothing

    source = FileSource(
        tmp_path / "mine.csv", mapping=ColumnMapping.load(tmp_path / "mapping.yaml")
    )
    batch = source.fetch()
    titles = batch.titles.set_index("title_id")
    assert titles.loc["tmdb:603", "genres"] == ["Action", "Fantasy", "Science Fiction"]
    assert titles.loc["tmdb:13", "year"] == 1994 and titles.loc["tmdb:13", "source"] == "my-export"
    assert batch.notes["ignored_columns"] == ["popularity"]


def test_jsonl_with_lists_and_a_missing_mapped_column(tmp_path):
    rows = [
        {
            "id": "tmdb:1",
            "title": "Heat",
            "overview": PLOTS[0],
            "genres": ["Crime"],
            "reviews": ["Taut and long."],
            "year": 1995,
            "kind": "movie",
        }
    ]
    path = tmp_path / "titles.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    report = validate_titles(FileSource(path).fetch().titles)
    assert report.counts["accepted"] == 1
    assert report.accepted["reviews"].iloc[0] == ["Taut and long."]

    broken = FileSource(path, mapping=ColumnMapping(columns={"plot_text": "plot"}))
    with pytest.raises(ValueError, match="has no column 'plot_text'"):
        broken.fetch()
    with pytest.raises(ValueError, match="not Title record fields"):
        ColumnMapping(columns={"overview": "synopsis"})


def test_tmdb_tv_genres_map_onto_the_vocabulary():
    dropped: Counter[str] = Counter()
    assert map_genres(["Action & Adventure", "Kids"], dropped) == ["Action", "Adventure", "Family"]
    assert map_genres(["science_fiction", "TV MOVIE", "Soap"], dropped) == [
        "Drama",
        "Science Fiction",
        "TV Movie",
    ]
    assert map_genres(["Talk", "Reality", "News"], dropped) == ["Documentary"]
    assert dropped == {"Talk": 1, "Reality": 1}
    assert map_genres(["Cyberpunk"]) == ["Cyberpunk"]  # unknown: kept, so validation rejects it


def test_distribution_warnings_flag_drift_but_not_resampling():
    reference = generate_titles(600, seed=1)
    same = generate_titles(600, seed=2)
    shifted = generate_titles(
        600, seed=3, drift=DriftKnobs(genre_prior_shift=1.0, text_length_scale=2.5)
    )
    assert distribution_warnings(same, reference) == []
    warnings = distribution_warnings(shifted, reference)
    assert any(w.startswith("genre prior: Drama") for w in warnings)
    assert any(w.startswith("plot length: median") for w in warnings)


def test_drift_is_recorded_on_the_snapshot(settings):
    ingest_frame(generate_titles(300, seed=1), settings, source="synthetic")
    drifted = generate_titles(300, seed=2, drift=DriftKnobs(text_length_scale=3.0))
    manifest = ingest_frame(drifted, settings, source="synthetic").manifest
    assert any("plot length" in w for w in manifest.warnings)


def test_lineage_follows_version_to_snapshot_parents(tmp_path, settings):
    first = ingest_frame(generate_titles(40, seed=1), settings, source="synthetic").manifest
    second = ingest_frame(generate_titles(40, seed=2), settings, source="synthetic").manifest
    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    version = registry.register_version(
        make_bundle(tmp_path, snapshot=second.snapshot_id), actor="test", reason="lineage"
    )

    found = data_lineage(registry, snapshot_store(settings), str(version))
    assert found.data_snapshot_id == second.snapshot_id
    assert [m.snapshot_id for m in found.snapshots] == [second.snapshot_id, first.snapshot_id]
    assert found.missing is None

    result = CliRunner().invoke(
        app,
        ["data", "lineage", "latest"],
        env={"TRENDING_HOME": str(settings.home), "COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    assert second.snapshot_id in result.output and first.snapshot_id in result.output

    orphan = registry.register_version(
        make_bundle(tmp_path, snapshot="snap-gone"), actor="test", reason="lineage"
    )
    assert data_lineage(registry, snapshot_store(settings), orphan).missing == "snap-gone"
