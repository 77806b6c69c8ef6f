"""Genre model families behind one small interface, and loading a bundle into a predictor."""

from __future__ import annotations

from trending.modelling.families.base import GenreModel, load_model, model_family
from trending.modelling.families.predictor import GenrePrediction, GenrePredictor

__all__ = ["GenreModel", "GenrePrediction", "GenrePredictor", "load_model", "model_family"]
