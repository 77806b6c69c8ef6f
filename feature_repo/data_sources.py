"""Feast data sources. Relative paths resolve against the environment's state folder."""

from feast import FileSource

title_features_source = FileSource(
    name="title_features_source",
    path="title_features.parquet",
    timestamp_field="event_timestamp",
    # A history: one row per version of a title, so historical retrieval is point-in-time correct.
    description="Per-title text features, one row per version, added by each materialization.",
    tags={"owner": "ml-platform"},
)
