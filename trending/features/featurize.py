"""Featurization shared by training and serving, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from trending.data.privacy import mask_text
from trending.features import definitions

# The columns the feature view serves for each title (see feature_repo/feature_views.py): the
# base columns, then every derived feature declared in trending/features/definitions.py.
BASE_FEATURE_COLUMNS = ("plot", "reviews", "kind", "year")
FEATURE_COLUMNS = (*BASE_FEATURE_COLUMNS, *(f.name for f in definitions.DERIVED_FEATURES))


def model_input_text(plot: str, reviews: Iterable[str] | None = None) -> str:
    """The single text a model sees for a title: the plot, then its reviews.

    Personal data is masked here too, so a request's e-mail address or phone number never
    becomes a feature at serving time (training rows were masked at ingest already).
    """
    parts = [plot.strip(), *(r.strip() for r in (reviews or ()) if r and r.strip())]
    return mask_text("\n".join(parts))


def title_features(titles: pd.DataFrame) -> pd.DataFrame:
    """Feature rows for the Feast offline source: one per title, keyed by title_id and time.

    The base columns come from the Title record; each derived feature is computed by its
    declaration (``definitions.DERIVED_FEATURES``) and checked against its rule.

    Raises:
        FeatureRuleError: A derived value breaks its declared rule.
    """
    reviews = titles["reviews"].map(lambda r: [str(x) for x in (r if r is not None else [])])
    plots = titles["plot"].astype(str)
    base = pd.DataFrame(
        {
            "title_id": titles["title_id"].astype(str),
            "event_timestamp": pd.to_datetime(titles["event_timestamp"], utc=True),
            "plot": plots,
            "reviews": reviews,
            "kind": titles["kind"].astype(str),
            "year": titles["year"].fillna(0).astype("int64"),
        }
    )
    transform_input = base.assign(title=titles["title"]) if "title" in titles else base
    derived = definitions.DERIVED_FEATURES
    rows = base.assign(**{f.name: f.compute(transform_input) for f in derived})
    definitions.check_feature_rules(rows, derived)
    return rows


def texts_of(frame: pd.DataFrame) -> list[str]:
    """Model input texts for a frame with ``plot`` and ``reviews`` columns."""
    return [
        model_input_text(plot, list(reviews) if reviews is not None else [])
        for plot, reviews in zip(frame["plot"], frame["reviews"], strict=True)
    ]
