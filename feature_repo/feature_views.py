"""Feast feature views over titles."""

from datetime import timedelta

from data_sources import title_features_source
from entities import title
from feast import FeatureView, Field
from feast.types import Array, Int64, String

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
        Field(name="plot_chars", dtype=Int64, description="Length of the plot in characters."),
        Field(name="review_count", dtype=Int64, description="Number of reviews."),
        Field(name="plot_words", dtype=Int64, description="Words in the plot (whitespace split)."),
        Field(name="review_chars", dtype=Int64, description="Characters over all reviews."),
    ],
    source=title_features_source,
    online=True,
    tags={"owner": "ml-platform"},
)
