"""Feast data sources. Relative paths resolve against the environment's state folder."""

from feast import FileSource

title_features_source = FileSource(
    name="title_features_source",
    path="title_features.parquet",
    timestamp_field="event_timestamp",
    description="Per-title text features written by `trending features materialize` from a snapshot.",
    tags={"owner": "ml-platform"},
)
