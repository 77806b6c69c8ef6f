"""The genre predictor: a ``kserve.Model`` over a model bundle."""

from serving.predictor.model import GenreClassifierModel

__all__ = ["GenreClassifierModel"]
