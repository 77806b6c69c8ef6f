"""Component: seeded split of labelled features into train and held-out test sets."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def split_dataset(
    features: Input[Dataset],
    train: Output[Dataset],
    test: Output[Dataset],
    test_size: float = 0.2,
    seed: int = 7,
) -> None:
    """Drop unlabeled rows and split the rest.

    Args:
        features: Labelled features from load_features.
        train: Rows to fit (and tune thresholds) on.
        test: Held-out rows, used only for evaluation.
        test_size: Share of rows held out.
        seed: Random seed of the split.
    """
    import pandas as pd

    from trending.modelling.training import split_labelled

    train_rows, test_rows = split_labelled(
        pd.read_parquet(features.path), test_size=test_size, seed=seed
    )
    train_rows.to_parquet(train.path, index=False)
    test_rows.to_parquet(test.path, index=False)
    train.metadata["rows"], test.metadata["rows"] = len(train_rows), len(test_rows)
