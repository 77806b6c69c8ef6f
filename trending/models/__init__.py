"""Genre model families behind one small interface, and loading a bundle into a predictor."""

from __future__ import annotations

from trending.models.base import GenreModel, load_model, model_family
from trending.models.predictor import GenrePrediction, GenrePredictor

__all__ = ["GenreModel", "GenrePrediction", "GenrePredictor", "load_model", "model_family"]
