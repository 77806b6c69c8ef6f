"""The Feast transformer: clients ask by title id, features come from the online store."""

from serving.transformer.model import FeastTransformer

__all__ = ["FeastTransformer"]
