"""Component: train one model family into a model bundle."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train_model(
    train: Input[Dataset],
    bundle: Output[Model],
    family: str,
    snapshot_id: str,
    params_json: str = "{}",
    seed: int = 7,
) -> None:
    """Fit the model, tune per-genre thresholds on a validation split, write the bundle.

    Args:
        train: Training rows (features + genres).
        bundle: The model bundle directory.
        family: Model family: xgboost | bert | linear | prior.
        snapshot_id: Data snapshot the rows come from, recorded in the manifest.
        params_json: JSON object of the family's parameters.
        seed: Random seed.
    """
    import json
    from pathlib import Path

    import pandas as pd

    from trending.modelling.training import train_bundle

    manifest = train_bundle(
        pd.read_parquet(train.path),
        Path(bundle.path),
        family=family,
        params=json.loads(params_json),
        data_snapshot_id=snapshot_id,
        seed=seed,
    )
    bundle.metadata.update({"family": manifest.model_family, **manifest.metrics["validation"]})
