"""Meta-level requirements and privacy at ingest: licences recorded and enforced, personal data
masked and counted, and kept out of features, logs and payload logs."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from fixtures.bundles import make_bundle

from trending.data.ingest import ingest_frame, ingest_source, snapshot_store, write_snapshot
from trending.data.lineage import data_lineage
from trending.data.privacy import mask_text
from trending.data.schema import validate_titles
from trending.data.sources import FileSource, SyntheticSource, UndeclaredLicenceError
from trending.data.sources.licence import GENERATED_LICENCE, TMDB_LICENCE
from trending.data.synthetic import generate_titles
from trending.features.featurize import model_input_text, texts_of, title_features
from trending.genres import GenreVocabulary
from trending.monitoring.payload_log import PayloadLogger, PayloadLogTarget
from trending.registry import Registry

PLOT = (
    "A retired detective hunts a killer across the city. Write to jane.doe@example.com or call "
    "+1 (555) 123-4567 for the fan club, see https://fans.example.org/killer?x=1 and follow "
    "@killerfan99 for news."
)
REVIEW = "Loved it! Mail me at bob_smith+spam@mail.co.uk, my cell is 020 7946 0958."
PLANTED = [
    "jane.doe@example.com",
    "555",
    "123-4567",
    "fans.example.org",
    "@killerfan99",
    "bob_smith",
    "7946",
]


def _titles_with_personal_data() -> pd.DataFrame:
    titles = generate_titles(12, seed=3)
    titles.at[0, "plot"] = PLOT
    titles.at[1, "reviews"] = [REVIEW, "A fine film."]
    return titles


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com now", "mail [email] now"),
        ("call 555-123-4567.", "call [phone]."),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("see www.example.com/page, then", "see [url], then"),
        ("see https://a.b/c?d=e@f", "see [url]"),
        ("ping @some_handle!", "ping [handle]!"),
        # Not personal data: years, year ranges, counts, prices, e-mail-less @ and plain words.
        ("Between 1939 1945 1950 the war raged.", "Between 1939 1945 1950 the war raged."),
        (
            "From 1984-1989, 10,000 people and $25 000 000.",
            "From 1984-1989, 10,000 people and $25 000 000.",
        ),
        ("They meet @ noon in Room 101.", "They meet @ noon in Room 101."),
    ],
)
def test_planted_personal_data_is_masked_and_look_alikes_are_kept(text, expected):
    assert mask_text(text) == expected
    assert mask_text(expected) == expected  # idempotent: masking twice finds nothing new


def test_ingest_masks_plots_and_reviews_and_counts_per_snapshot(settings, caplog):
    caplog.set_level(logging.DEBUG)
    result = ingest_frame(_titles_with_personal_data(), settings, source="synthetic")
    stored = snapshot_store(settings).read(result.manifest.snapshot_id)
    manifest = snapshot_store(settings).manifest(result.manifest.snapshot_id)
    features = title_features(stored)
    everything = (
        json.dumps(
            {
                "rows": stored.astype(str).to_dict(orient="records"),
                "features": features.astype(str).to_dict(orient="records"),
                "texts": texts_of(stored),
                "manifest": manifest.model_dump(mode="json"),
            }
        )
        + caplog.text
    )

    assert manifest.personal_data_masked == {"url": 1, "email": 2, "phone": 2, "handle": 1}
    assert not [p for p in PLANTED if p in everything]
    assert "[email]" in stored.set_index("title_id").loc[stored["title_id"][0], "plot"]


def test_rejected_rows_are_masked_too(settings):
    titles = _titles_with_personal_data()
    titles.at[0, "genres"] = ["space_opera"]  # rejected, with its plot kept for the report
    report = validate_titles(titles, GenreVocabulary())
    rejected = json.dumps(report.rejected.astype(str).to_dict(orient="records"))
    assert len(report.rejected) == 1 and "jane.doe" not in rejected and "[email]" in rejected


def test_serving_features_and_payload_logs_never_see_personal_data(tmp_path):
    assert not [p for p in PLANTED if p in model_input_text(PLOT, [REVIEW])]
    target = PayloadLogTarget(
        sink_url=f"file://{tmp_path}/payloads", source="http://p", inference_service_name="m"
    )
    logger = PayloadLogger(target)
    event = logger.event("org.kubeflow.serving.inference.request", "e1", {"instances": [PLOT]})
    assert not [p for p in PLANTED if p in json.dumps(event.get_data())]


def test_licences_are_recorded_and_followed_through_lineage(settings, tmp_path):
    synthetic = ingest_source(SyntheticSource(30, seed=1), settings).manifest
    path = tmp_path / "dev.parquet"
    generate_titles(30, seed=2).to_parquet(path, index=False)
    declared = ingest_source(FileSource(path, licence="tmdb"), settings).manifest

    assert synthetic.licence == GENERATED_LICENCE
    assert declared.licence.name == TMDB_LICENCE.name
    assert declared.licence.commercial_use is False and "TMDB" in declared.licence.attribution
    assert declared.licence.declared_by == "caller"

    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    version = registry.register_version(
        make_bundle(tmp_path, snapshot=declared.snapshot_id), actor="test", reason="licence"
    )
    lineage = data_lineage(registry, snapshot_store(settings), version)
    assert lineage.licence is not None and lineage.licence.commercial_use is False


def test_a_source_without_a_declared_licence_is_refused_before_anything_is_written(
    settings, tmp_path
):
    path = tmp_path / "unknown.parquet"
    generate_titles(20, seed=2).to_parquet(path, index=False)
    with pytest.raises(UndeclaredLicenceError, match="no declared licence"):
        ingest_source(FileSource(path), settings)
    with pytest.raises(UndeclaredLicenceError, match="no declared licence"):
        ingest_frame(generate_titles(20, seed=2), settings, source="scraped")
    with pytest.raises(UndeclaredLicenceError, match="commercial_use"):
        FileSource(path, licence={"name": "my terms"})
    assert snapshot_store(settings).list() == []


def test_a_window_over_snapshots_carries_the_strictest_licence(settings):
    ingest_frame(generate_titles(20, seed=1), settings, source="synthetic")
    ingest_frame(generate_titles(20, seed=2), settings, source="tmdb")
    rows = validate_titles(generate_titles(25, seed=3))
    window = write_snapshot(
        snapshot_store(settings), rows, source="window", params={"kind": "growing"}
    )
    assert window.licence.commercial_use is False
    assert window.licence.declared_by == "derived"
    assert TMDB_LICENCE.attribution in window.licence.attribution
