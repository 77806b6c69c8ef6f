"""Feast entities: a title (movie or TV show) keyed by its platform-wide id."""

from feast import Entity, ValueType

title = Entity(
    name="title",
    join_keys=["title_id"],
    value_type=ValueType.STRING,
    description="A movie or TV show; title_id is '<source>:<id>', e.g. 'tmdb:603'.",
    tags={"owner": "ml-platform"},
)
