"""Featurization shared by training and serving, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from trending.data.privacy import mask_text

# The columns the feature view serves for each title (see feature_repo/feature_views.py).
FEATURE_COLUMNS = (
    "plot",
    "reviews",
    "kind",
    "year",
    "plot_chars",
    "review_count",
    "plot_words",
    "review_chars",
)


def model_input_text(plot: str, reviews: Iterable[str] | None = None) -> str:
    """The single text a model sees for a title: the plot, then its reviews.

    Personal data is masked here too, so a request's e-mail address or phone number never
    becomes a feature at serving time (training rows were masked at ingest already).
    """
    parts = [plot.strip(), *(r.strip() for r in (reviews or ()) if r and r.strip())]
    return mask_text("\n".join(parts))


def title_features(titles: pd.DataFrame) -> pd.DataFrame:
    """Feature rows for the Feast offline source: one per title, keyed by title_id and time."""
    reviews = titles["reviews"].map(lambda r: [str(x) for x in (r if r is not None else [])])
    plots = titles["plot"].astype(str)
    return pd.DataFrame(
        {
            "title_id": titles["title_id"].astype(str),
            "event_timestamp": pd.to_datetime(titles["event_timestamp"], utc=True),
            "plot": plots,
            "reviews": reviews,
            "kind": titles["kind"].astype(str),
            "year": titles["year"].fillna(0).astype("int64"),
            "plot_chars": plots.str.len().astype("int64"),
            "review_count": reviews.map(len).astype("int64"),
            # Text statistics: cheap signals for drift monitoring and for sanity checks.
            "plot_words": plots.str.split().map(len).astype("int64"),
            "review_chars": reviews.map(lambda r: sum(len(x) for x in r)).astype("int64"),
        }
    )


def texts_of(frame: pd.DataFrame) -> list[str]:
    """Model input texts for a frame with ``plot`` and ``reviews`` columns."""
    return [
        model_input_text(plot, list(reviews) if reviews is not None else [])
        for plot, reviews in zip(frame["plot"], frame["reviews"], strict=True)
    ]
