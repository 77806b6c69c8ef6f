"""Feast feature views over titles."""

from datetime import timedelta

from data_sources import title_features_source
from entities import title
from feast import FeatureView, Field
from feast.types import Array, Float64, Int64, String

from trending.features.definitions import DERIVED_FEATURES

FEAST_TYPES = {"int64": Int64, "float64": Float64, "string": String}

title_text = FeatureView(
    name="title_text",
    entities=[title],
    # Titles do not expire: a plot written in 1999 is still the plot.
    ttl=timedelta(days=365 * 100),
    schema=[
        Field(name="plot", dtype=String, description="Plot summary, whitespace-stripped."),
        Field(name="reviews", dtype=Array(String), description="Review texts, possibly empty."),
        Field(name="kind", dtype=String, description="'movie' or 'tv'."),
        Field(name="year", dtype=Int64, description="Release year; 0 when unknown."),
        # Derived features: one declaration each (name, type, transformation, rule).
        *(
            Field(name=f.name, dtype=FEAST_TYPES[f.dtype], description=f.description)
            for f in DERIVED_FEATURES
        ),
    ],
    source=title_features_source,
    online=True,
    tags={"owner": "ml-platform"},
)
