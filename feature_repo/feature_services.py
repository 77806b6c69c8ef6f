"""Feast feature services: the versioned feature sets models are trained and served on."""

from feast import FeatureService
from feature_views import title_text

genre_classifier_v1 = FeatureService(
    name="genre_classifier_v1",
    features=[title_text],
    description="Features of the genre classifier (both families): plot and reviews text.",
    tags={"owner": "ml-platform"},
)
