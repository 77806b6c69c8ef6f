"""The column-wise conversion of feature rows writes what Feast's own conversion writes.

Judged by Feast: ``feast.utils._convert_arrow_to_proto`` is what ``write_to_online_store`` hands
the online store, and the stores persist ``Value.SerializeToString()``, the serialized entity key
and the event time; the two must agree byte for byte on every type, dtype and kind of null.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)
from feast.utils import _convert_arrow_to_proto

from trending.features.online_write import batches, column_values, online_rows

REPO_ROOT = Path(__file__).resolve().parents[2]

FIELDS = {
    "text": String,
    "text_extension": String,
    "count": Int64,
    "count_nullable": Int64,
    "count_from_floats": Int64,
    "small": Int32,
    "ratio": Float64,
    "ratio_single": Float32,
    "flag": Bool,
    "flag_nullable": Bool,
    "texts": Array(String),
    "counts": Array(Int64),
    "ratios": Array(Float64),
    "stamp": UnixTimestamp,
    "blob": Bytes,
    "flags": Array(Bool),
}


def feature_view(created: bool = False) -> FeatureView:
    source = FileSource(
        name="rows",
        path="rows.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created" if created else "",
    )
    entity = Entity(name="title", join_keys=["title_id"], value_type=ValueType.STRING)
    return FeatureView(
        name="every_type",
        entities=[entity],
        ttl=timedelta(days=1),
        schema=[
            Field(name="title_id", dtype=String),
            *(Field(name=n, dtype=t) for n, t in FIELDS.items()),
        ],
        source=source,
        online=True,
    )


def rows_with_every_kind_of_value(tz: bool = True) -> pd.DataFrame:
    stamps = pd.to_datetime(
        [
            "2024-01-01T10:00:00",
            "1970-01-01T00:00:00",
            "2024-06-30T23:59:59.123456",
            "2024-01-01T10:00:00",
        ],
        format="ISO8601",
    )
    return pd.DataFrame(
        {
            "title_id": ["tmdb:1", "tmdb:2", "tmdb:3", "tmdb:4"],
            "event_timestamp": stamps.tz_localize("UTC") if tz else stamps,
            "text": ["a plot", None, "", "a plot"],
            "text_extension": pd.array(["tv", pd.NA, "movie", "tv"], dtype="string"),
            "count": np.array([0, 7, -3, 7], dtype="int64"),
            "count_nullable": pd.array([1, None, 0, 1], dtype="Int64"),
            "count_from_floats": [1.0, np.nan, 2.0, 0.0],
            "small": np.array([1, 2, 3, 1], dtype="int32"),
            "ratio": [0.5, np.nan, -0.0, 0.0],
            "ratio_single": [0.1, 2.5, np.nan, 0.1],
            "flag": [True, False, True, True],
            "flag_nullable": pd.array([True, None, False, True], dtype="boolean"),
            "texts": [np.array(["good", "bad"]), np.array([], dtype=object), None, ["good"]],
            "counts": [np.array([1, 2]), None, np.array([], dtype="int64"), [3]],
            "ratios": [[0.5], [], None, [1.5, -0.0]],
            "stamp": pd.to_datetime(["2024-01-01", None, "2023-05-05", "2024-01-01"], utc=True),
            "blob": [b"x", None, b"", b"x"],
            "flags": [[True], None, [], [False, True]],
        }
    )


def serialized(rows) -> list[tuple]:
    return [
        (
            serialize_entity_key(key, entity_key_serialization_version=3),
            {name: value.SerializeToString() for name, value in values.items()},
            event_time,
            created,
        )
        for key, values, event_time, created in rows
    ]


def feast_rows(frame: pd.DataFrame, view: FeatureView) -> list[tuple]:
    """What FeatureStore.write_to_online_store hands the online store for ``frame``."""
    join_keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
    return _convert_arrow_to_proto(pa.Table.from_pandas(frame), view, join_keys)


@pytest.mark.parametrize("tz", [True, False], ids=["utc-times", "naive-times"])
def test_every_type_dtype_and_null_is_converted_as_feast_converts_it(tz) -> None:
    view = feature_view()
    frame = rows_with_every_kind_of_value(tz)
    ours = online_rows(frame, view)
    assert serialized(ours) == serialized(feast_rows(frame, view))
    # Nulls are empty Values (read back as None); an empty list is a present, empty list.
    assert ours[1][1]["text"].WhichOneof("val") is None
    assert ours[1][1]["count_nullable"].WhichOneof("val") is None
    assert ours[1][1]["texts"].WhichOneof("val") == "string_list_val"
    assert ours[2][1]["ratio"].double_val == 0.0 and str(ours[2][1]["ratio"].double_val) == "-0.0"


def test_the_projects_view_is_converted_as_feast_converts_it(tmp_path) -> None:
    from trending.data.synthetic import generate_titles
    from trending.features.featurize import title_features
    from trending.features.store import FEATURE_VIEW, TitleFeatureStore

    store = TitleFeatureStore(REPO_ROOT / "feature_repo", tmp_path / "feast")
    store.apply()
    view = store.store.get_feature_view(FEATURE_VIEW)  # as materialize reads it
    titles = generate_titles(25, seed=41)
    reviews = titles["reviews"].tolist()
    reviews[3] = []  # a title without reviews: an empty list, not a null
    titles["reviews"] = reviews
    frame = title_features(titles)
    assert serialized(online_rows(frame, view)) == serialized(feast_rows(frame, view))


def test_keys_of_two_entities_are_converted_as_feast_converts_them() -> None:
    title = Entity(name="title", join_keys=["title_id"], value_type=ValueType.STRING)
    region = Entity(name="region", join_keys=["region_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="by_region",
        entities=[title, region],
        ttl=timedelta(days=1),
        schema=[
            Field(name="title_id", dtype=String),
            Field(name="region_id", dtype=Int64),
            Field(name="views", dtype=Int64),
        ],
        source=FileSource(name="regions", path="r.parquet", timestamp_field="event_timestamp"),
        online=True,
    )
    frame = pd.DataFrame(
        {
            "title_id": ["tmdb:1", "tmdb:1", "tmdb:2"],
            "region_id": [7, 8, 7],
            "views": [10, 20, 30],
            "event_timestamp": pd.to_datetime(["2024-01-01T00:00:00"] * 3, utc=True),
        }
    )
    ours = online_rows(frame, view)
    assert serialized(ours) == serialized(feast_rows(frame, view))
    assert len({serialize_entity_key(k, 3) for k, *_ in ours}) == 3


def test_a_view_without_entity_columns_is_refused() -> None:
    view = feature_view()
    view.entity_columns = []
    with pytest.raises(ValueError, match="registry"):
        online_rows(rows_with_every_kind_of_value(), view)


def test_created_timestamps_and_field_mapping_follow_the_source() -> None:
    view = feature_view(created=True)
    frame = rows_with_every_kind_of_value()
    frame["created"] = frame["event_timestamp"] + pd.Timedelta(minutes=5)
    ours = online_rows(frame, view)
    assert serialized(ours) == serialized(feast_rows(frame, view))
    assert ours[0][3] == datetime(2024, 1, 1, 10, 5)

    view.batch_source.field_mapping = {"plot_text": "text"}
    renamed = frame.rename(columns={"text": "plot_text"})
    assert serialized(online_rows(renamed, view)) == serialized(ours)


def test_repeated_values_share_one_value_but_floats_do_not() -> None:
    values = column_values(pd.Series(["tv", "movie", "tv", "tv"]), ValueType.STRING)
    assert values[0] is values[2] and values[0] is not values[1]
    assert [v.string_val for v in values] == ["tv", "movie", "tv", "tv"]
    floats = column_values(pd.Series([0.0, -0.0]), ValueType.DOUBLE)
    assert floats[0].SerializeToString() != floats[1].SerializeToString()
    mixed = column_values(pd.Series([1, True, "1"], dtype=object), ValueType.STRING)
    assert [v.string_val for v in mixed] == ["1", "True", "1"]


def test_rows_missing_a_feature_are_refused_naming_it() -> None:
    frame = rows_with_every_kind_of_value().drop(columns=["ratio"])
    with pytest.raises(KeyError, match="ratio"):
        online_rows(frame, feature_view())


def test_batches_cover_every_row_once() -> None:
    frame = pd.DataFrame({"i": range(7)})
    assert [b["i"].tolist() for b in batches(frame, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches(frame.iloc[:0], 3)) == []


def test_no_rows_no_online_rows() -> None:
    frame = rows_with_every_kind_of_value().iloc[:0]
    assert online_rows(frame, feature_view()) == []
