"""The interface every model family implements, and the family lookup by name."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# family name -> "module:Class"; imported lazily so serving XGBoost never imports torch.
FAMILIES: dict[str, str] = {
    "xgboost": "trending.modelling.families.xgboost:XGBoostGenreModel",
    "bert": "trending.modelling.families.bert:BertGenreModel",
    "linear": "trending.modelling.families.linear:LinearGenreModel",
    "prior": "trending.modelling.families.prior:PriorGenreModel",
}


class GenreModel(Protocol):
    """A multi-label genre classifier over model input texts.

    A family that holds rows out of ``fit`` (e.g. for early stopping) may also define
    ``held_out_scores() -> (row indices, scores) | None``; training tunes the thresholds on
    those scores instead of paying for out-of-fold refits.
    """

    family: str

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Train on texts and their multi-hot labels."""
        ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [0, 1], shape (len(texts), genres)."""
        ...

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the model files into ``directory``; return the featurizer config."""
        ...

    @classmethod
    def load(cls, directory: Path) -> GenreModel:
        """Read a model saved by ``save``."""
        ...


def model_family(name: str) -> type[GenreModel]:
    """The class implementing family ``name``."""
    try:
        module_name, class_name = FAMILIES[name].split(":")
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}: choose one of {sorted(FAMILIES)}"
        ) from None
    return getattr(importlib.import_module(module_name), class_name)


def load_model(bundle_dir: Path, family: str) -> GenreModel:
    """Load the model files of a bundle (verify it first: ``trending.modelling.bundle``).

    The manifest is read first, so a bundle of an older, pickled format is refused before any
    model file is touched; the families read only JSON, plain arrays, XGBoost JSON and
    safetensors, never a pickle.

    Raises:
        BundleError: No manifest, an older format, or a manifest of another family.
    """
    from trending.modelling.bundle import BundleError, read_manifest

    manifest = read_manifest(Path(bundle_dir))
    if manifest.model_family != family:
        raise BundleError(
            f"{bundle_dir} holds a {manifest.model_family} model, not {family}: load it as "
            f"{manifest.model_family}"
        )
    return model_family(family).load(Path(bundle_dir) / "model")
