"""Component: fit the drift detector on the training reference and store it in the bundle."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def fit_drift_detector(
    bundle: Input[Model],
    train: Input[Dataset],
    bundle_with_detector: Output[Model],
    backend: str = "scipy",
) -> None:
    """Copy the bundle and add ``drift/`` (feature + prediction drift reference) to it.

    Args:
        bundle: The champion bundle.
        train: The rows it was trained on (the drift reference).
        bundle_with_detector: The bundle with ``drift/`` and a re-written manifest.
        backend: scipy (Apache-licensed) or alibi (Alibi Detect, BSL 1.1).
    """
    import shutil
    from pathlib import Path

    import pandas as pd

    from trending.monitoring.drift import add_drift_detector

    shutil.copytree(bundle.path, bundle_with_detector.path)
    add_drift_detector(
        Path(bundle_with_detector.path), pd.read_parquet(train.path), backend=backend
    )
