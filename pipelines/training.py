"""The training pipeline: features -> split -> train -> evaluate -> register."""

from kfp import dsl

from components.evaluate import evaluate
from components.load_features import load_features
from components.register import register
from components.split_dataset import split_dataset
from components.train_model import train_model


@dsl.pipeline(
    name="genre-training",
    description="Train the genre classifier on a data snapshot and register it.",
)
def training_pipeline(
    data_uri: str,
    snapshot_id: str,
    feature_repo: str,
    feast_dir: str,
    registry_uri: str,
    model_name: str = "genre-classifier",
    params_json: str = "{}",
    seed: int = 7,
) -> int:
    """Wire the training steps; returns the registered version number."""
    features = load_features(
        data_uri=data_uri, snapshot_id=snapshot_id, feature_repo=feature_repo, feast_dir=feast_dir
    )
    split = split_dataset(features=features.outputs["features"], seed=seed)
    trained = train_model(
        train=split.outputs["train"],
        family="xgboost",
        snapshot_id=snapshot_id,
        params_json=params_json,
        seed=seed,
    ).set_display_name("train-xgboost")
    evaluated = evaluate(bundle=trained.outputs["bundle"], test=split.outputs["test"])
    registered = register(
        bundle=evaluated.outputs["evaluated"], registry_uri=registry_uri, model_name=model_name
    )
    return registered.output
