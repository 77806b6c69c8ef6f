"""The derived features of a title, each declared once: Feast field, transformation, schema rule.

A ``DerivedFeature`` is everything the platform needs to know about a feature computed from the
Title record: its name and type (the Feast ``Field`` of the ``title_text`` view is built from
it in feature_repo/feature_views.py), how it is computed from a title's base columns (used by
``trending.features.featurize.title_features``, the one featurization behind the Feast offline
rows that training reads and the online rows that serving reads), and the range its values must
stay in (checked on every featurized batch; a violation names the title and the rule).

Adding a feature is one entry in ``DERIVED_FEATURES`` (docs/data.md, "Adding a feature").
This module imports only pandas, so the Feast repository can read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

FeatureDtype = Literal["int64", "float64", "string"]


class FeatureRuleError(ValueError):
    """A derived feature value outside its declared range: a featurization bug, not bad data."""


@dataclass(frozen=True)
class DerivedFeature:
    """One derived feature.

    Attributes:
        name: Column and Feast field name (snake_case, unique).
        dtype: ``int64``, ``float64`` or ``string``.
        description: The Feast field description.
        transform: Computes the column from the base feature frame (``title_id``, ``plot`` as
            str, ``reviews`` as list[str], ``kind``, ``year``, ``title`` when present).
        minimum: Smallest valid value (numbers), None for no bound.
        maximum: Largest valid value (numbers), None for no bound.
    """

    name: str
    dtype: FeatureDtype
    description: str
    transform: Callable[[pd.DataFrame], pd.Series]
    minimum: float | None = None
    maximum: float | None = None

    def compute(self, base: pd.DataFrame) -> pd.Series:
        """The feature column for ``base``, in the declared type."""
        values = pd.Series(self.transform(base), index=base.index)
        return values.astype("string" if self.dtype == "string" else self.dtype)

    def violations(self, values: pd.Series) -> pd.Series:
        """A boolean mask of the values that break the rule (missing values always do)."""
        bad = values.isna()
        if self.minimum is not None:
            bad |= values < self.minimum
        if self.maximum is not None:
            bad |= values > self.maximum
        return bad


DERIVED_FEATURES: tuple[DerivedFeature, ...] = (
    DerivedFeature(
        "plot_chars",
        "int64",
        "Length of the plot in characters.",
        lambda f: f["plot"].str.len(),
        minimum=1,
    ),
    DerivedFeature(
        "review_count", "int64", "Number of reviews.", lambda f: f["reviews"].map(len), minimum=0
    ),
    DerivedFeature(
        "plot_words",
        "int64",
        "Words in the plot (whitespace split).",
        lambda f: f["plot"].str.split().map(len),
        minimum=1,
    ),
    DerivedFeature(
        "review_chars",
        "int64",
        "Characters over all reviews.",
        lambda f: f["reviews"].map(lambda r: sum(len(x) for x in r)),
        minimum=0,
    ),
)


def check_feature_rules(rows: pd.DataFrame, features: tuple[DerivedFeature, ...]) -> None:
    """Raise FeatureRuleError naming the first titles whose derived values break a rule."""
    for feature in features:
        bad = feature.violations(rows[feature.name])
        if bad.any():
            ids = rows.loc[bad, "title_id"].head(3).tolist()
            bounds = f"[{feature.minimum}, {feature.maximum}]"
            raise FeatureRuleError(
                f"feature {feature.name} is outside {bounds} or missing for {int(bad.sum())} "
                f"title(s), e.g. {ids}: fix its transformation in trending/features/definitions.py"
            )
